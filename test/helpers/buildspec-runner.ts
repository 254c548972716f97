import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';

// Fake `docker` and `aws`: record argv (one call per line, args tab-separated) to $FAKE_DIR/calls, for
// `--build-arg NAME` the value docker would read from its environment, and for `--secret id=…,env=VAR` the
// value of VAR; docker's global `--config DIR` as a `config DIR` pseudo-call, not in argv. `buildx build` writes
// a metadata file with $FAKE_DIGEST and $FAKE_MEDIA_TYPE (when set).
// $FAKE_CONTAINERD_STORE=1 makes `docker info` (and the fake curl below) report the containerd image store. With
// --cache-from and --cache-to, `buildx build` prints BuildKit's import and export steps, failed with
// $FAKE_CACHE_IMPORT_ERROR and $FAKE_CACHE_EXPORT_ERROR when set. `login` appends `<registry>\t<password read from stdin>` to
// $FAKE_DIR/logins; $FAKE_LOGIN_REFUSED=<registry> refuses that one as a registry answering 401 does. $FAKE_BUILD_ERROR makes
// `buildx build` print it and fail.
// An absolute bash that ignores BASH_ENV (-p), and only builtins where build args are in the environment: the real
// docker is no shell script, so build args such as PATH or BASH_ENV must not change how the fake runs.
const FAKE_DOCKER = `#!/bin/bash -p
config=""
if [ "\${1:-}" = --config ]; then config="$2"; shift 2; fi
line=docker; for a in "$@"; do line+=$'\\t'"$a"; done
if [ -n "$config" ]; then line+=$'\\n'"config"$'\\t'"$config"; fi
printf '%s\\n' "$line" >> "$FAKE_DIR/calls" # one write: concurrent fakes (pipelines) never interleave
case "$1 \${2:-} \${3:-}" in
  "info "*)
    if [ "\${FAKE_CONTAINERD_STORE:-}" = 1 ]; then echo '[["driver-type","io.containerd.snapshotter.v1"]]'; else echo '[["Backing Filesystem","extfs"]]'; fi ;;
  "buildx build "*)
    prev=""; meta=""
    for a in "$@"; do
      if [ "$prev" = "--build-arg" ]; then printf 'env\\t%s=%s\\n' "$a" "\${!a-<unset>}" >> "$FAKE_DIR/calls"; fi
      if [ "$prev" = "--secret" ]; then var="\${a##*env=}"; printf 'secret\\t%s=%s\\n' "$var" "\${!var-<unset>}" >> "$FAKE_DIR/calls"; fi
      if [ "$prev" = "--metadata-file" ]; then meta="$a"; fi
      if [ "$prev" = "--cache-from" ]; then
        echo "#3 importing cache manifest from \${a#*ref=}"
        if [ -n "\${FAKE_CACHE_IMPORT_ERROR:-}" ]; then echo "#3 ERROR: $FAKE_CACHE_IMPORT_ERROR"; else echo "#3 DONE 0.1s"; fi
      fi
      prev="$a"
    done
    echo "#8 [2/2] RUN make"
    if [[ " $* " == *" --cache-to "* ]]; then
      echo "#11 exporting cache to registry"
      if [ -n "\${FAKE_CACHE_EXPORT_ERROR:-}" ]; then echo "#11 ERROR: $FAKE_CACHE_EXPORT_ERROR"; else echo "#11 DONE 0.2s"; fi
    fi
    if [ -n "\${FAKE_BUILD_ERROR:-}" ]; then echo "$FAKE_BUILD_ERROR"; exit 1; fi
    if [ -n "$meta" ] && [ -n "\${FAKE_DIGEST:-}" ]; then
      printf '{\\n  "containerimage.descriptor": {\\n    "mediaType": "%s",\\n    "digest": "%s"\\n  },\\n  "containerimage.digest": "%s"\\n}\\n' "\${FAKE_MEDIA_TYPE:-application/vnd.oci.image.index.v1+json}" "$FAKE_DIGEST" "$FAKE_DIGEST" > "$meta"
    fi ;;
  "login "*)
    password="$(cat)"; printf '%s\n' "$password" > "$FAKE_DIR/login-password"
    printf '%s\t%s\n' "\${@: -1}" "$password" >> "$FAKE_DIR/logins"
    if [ "\${FAKE_LOGIN_REFUSED:-}" = "\${@: -1}" ]; then echo "Error response from daemon: login attempt to http://\${@: -1}/v2/ failed with status: 401 Unauthorized" >&2; exit 1; fi
    echo "Login Succeeded" ;;
esac
exit "\${FAKE_DOCKER_EXIT:-0}"
`;

// A fake `curl`: records its argv as docker's fake does and answers the engine API's /info as the engine that
// $FAKE_CONTAINERD_STORE describes, or fails as curl does without a socket when $FAKE_NO_ENGINE_API is set.
const FAKE_CURL = `#!/bin/bash -p
line=curl; for a in "$@"; do line+=$'\\t'"$a"; done
printf '%s\\n' "$line" >> "$FAKE_DIR/calls"
if [ -n "\${FAKE_NO_ENGINE_API:-}" ]; then exit 7; fi
if [ "\${FAKE_CONTAINERD_STORE:-}" = 1 ]; then
  echo '{"Containers":0,"Driver":"overlayfs","DriverStatus":[["driver-type","io.containerd.snapshotter.v1"]],"Plugins":{}}'
else
  echo '{"Containers":0,"Driver":"overlay2","DriverStatus":[["Backing Filesystem","extfs"],["Supports d_type","true"]],"Plugins":{}}'
fi
`;

const FAKE_AWS = `#!/usr/bin/env bash
line=aws; for a in "$@"; do line+=$'\\t'"$a"; done
printf '%s\\n' "$line" >> "$FAKE_DIR/calls"
echo "ecr-password"
`;

// A recording env(1): its argv as an `envcmd` call (where a value on a command line would show), then the real one.
const FAKE_ENV = `#!/bin/bash -p
line=envcmd; for a in "$@"; do line+=$'\\t'"$a"; done
printf '%s\\n' "$line" >> "$FAKE_DIR/calls"
exec /usr/bin/env "$@"
`;

export interface BuildspecRun {
  status: number | null;
  stdout: string;
  stderr: string;
  /** argv of each docker/aws/env/curl call (env's as `envcmd`), plus `env NAME=value`, `secret VAR=value` and `config DIR` pseudo-calls. */
  calls: string[][];
  /** Values of the buildspec's exported-variables after the last command. */
  exported: Record<string, string>;
  dir: string;
}

/**
 * Runs a buildspec's phases the way CodeBuild does: `env.shell` bash, every command in one shell
 * session, stopping at the first failing command; then reads the exported variables.
 */
export function runBuildspec(buildspec: string, env: Record<string, string>): BuildspecRun {
  const dir = mkdtempSync(join(tmpdir(), 'cbi-buildspec-'));
  const bin = join(dir, 'bin');
  const src = join(dir, 'src');
  spawnSync('mkdir', ['-p', bin, src]);
  writeFileSync(join(bin, 'docker'), FAKE_DOCKER);
  writeFileSync(join(bin, 'aws'), FAKE_AWS);
  writeFileSync(join(bin, 'env'), FAKE_ENV);
  writeFileSync(join(bin, 'curl'), FAKE_CURL);
  for (const name of ['docker', 'aws', 'env', 'curl']) chmodSync(join(bin, name), 0o755);
  writeFileSync(join(dir, 'calls'), '');

  const doc = parse(buildspec) as {
    env?: { shell?: string; variables?: Record<string, string>; 'exported-variables'?: string[] };
    phases: Record<string, { commands?: string[] }>;
  };
  const commands = ['install', 'pre_build', 'build', 'post_build'].flatMap((p) => doc.phases[p]?.commands ?? []);
  const exported = doc.env?.['exported-variables'] ?? [];
  const script = [
    ...commands.map((c) => `${c}\nrc=$?; if [ "$rc" -ne 0 ]; then echo "command failed: $rc" >&2; exit "$rc"; fi`),
    `for v in ${exported.join(' ')}; do printf '%s=%s\\n' "$v" "\${!v-}"; done > "$FAKE_DIR/exported"`,
  ].join('\n');
  const shell = doc.env?.shell ?? 'sh';
  const res = spawnSync(shell, ['-c', script], {
    cwd: src,
    env: {
      PATH: `${bin}:${process.env.PATH ?? ''}`,
      HOME: dir,
      TMPDIR: dir,
      CODEBUILD_SRC_DIR: src,
      CODEBUILD_BUILD_ID: 'image-builder:0f0e0d0c-0b0a-4909-8807-060504030201',
      FAKE_DIR: dir,
      ...doc.env?.variables,
      ...env,
    },
    encoding: 'utf8',
  });
  const calls = readFileSync(join(dir, 'calls'), 'utf8').split('\n').filter(Boolean).map((l) => l.split('\t'));
  let exportedValues: Record<string, string> = {};
  try {
    exportedValues = Object.fromEntries(
      readFileSync(join(dir, 'exported'), 'utf8').split('\n').filter(Boolean).map((l) => {
        const i = l.indexOf('=');
        return [l.slice(0, i), l.slice(i + 1)];
      }),
    );
  } catch {
    // the script failed before the end
  }
  return { status: res.status, stdout: res.stdout, stderr: res.stderr, calls, exported: exportedValues, dir };
}
