/** The body of `## [version]` in a keep-a-changelog text, trimmed; undefined when there is none. */
export function changelogSection(changelog: string, version: string): string | undefined;
/** Relative links of the section as absolute links into `https://<project>/-/blob/<ref>/`. */
export function absoluteLinks(section: string, project: string, ref: string): string;
