/** `gitlab.com/group/project` → `group%2Fproject` */
export function encodedProjectPath(catalogProject: string): string;
/** The template text with its cbi_sha256= and cbi_project= lines set. */
export function stamp(template: string, sha256: string, project: string): string;
