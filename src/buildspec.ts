import { stringify } from 'yaml';
import type { Settings } from './settings';

/**
 * Environment variables the generated buildspec reads. `startBuildInput` (src/codebuild.ts) sets them
 * through environmentVariablesOverride, so no user value is ever written into the buildspec text.
 */
export const BuildEnv = {
  /** Repository without tag, e.g. `123456789012.dkr.ecr.eu-west-1.amazonaws.com/app`. */
  image: 'CBI_IMAGE',
  /** Registry host of the image, e.g. `123456789012.dkr.ecr.eu-west-1.amazonaws.com`. */
  registry: 'CBI_REGISTRY',
  /** Region of the ECR registry; set only when the image is in ECR. */
  ecrRegion: 'CBI_ECR_REGION',
  /** Tags separated by single spaces (tags cannot contain spaces). */
  tags: 'CBI_TAGS',
  /** Dockerfile path relative to the context (the source root). */
  dockerfile: 'CBI_DOCKERFILE',
  /** Optional. */
  target: 'CBI_TARGET',
  /** Optional. */
  platform: 'CBI_PLATFORM',
  /** Build-arg names separated by single spaces; optional. */
  buildArgNames: 'CBI_BUILD_ARG_NAMES',
  /** Each build arg's value (or secret) is in CBI_ARG_<NAME>. */
  buildArgPrefix: 'CBI_ARG_',
  /** Name of the exported variable carrying the digest. */
  digestVariable: 'CBI_DIGEST_VARIABLE',
} as const;

/** Exported variable carrying `<repository>@<digest>`. */
export const IMAGE_REF_VARIABLE = 'IMAGE_REF';

// Every script runs in a subshell so `set -euo pipefail` never leaks into the shell CodeBuild keeps
// between commands. Lists are read with `read -a` (no globbing), and empty arrays are never expanded
// because bash < 4.4 (Amazon Linux 2 images) treats "${empty[@]}" as unbound under `set -u`.
const LOGIN = `(
  set -euo pipefail
  echo "Logging in to $CBI_REGISTRY"
  aws ecr get-login-password --region "$CBI_ECR_REGION" | docker login --username AWS --password-stdin "$CBI_REGISTRY"
)`;

// Build args reach docker through its environment (\`--build-arg NAME\` without a value), so neither
// plaintext nor secret values appear in any command line.
const BUILD = `(
  set -euo pipefail
  cd "\${CODEBUILD_SRC_DIR:-.}"
  read -r -a tags <<< "$CBI_TAGS"
  args=(build --file "$CBI_DOCKERFILE")
  for tag in "\${tags[@]}"; do args+=(--tag "$CBI_IMAGE:$tag"); done
  if [ -n "\${CBI_TARGET:-}" ]; then args+=(--target "$CBI_TARGET"); fi
  if [ -n "\${CBI_PLATFORM:-}" ]; then args+=(--platform "$CBI_PLATFORM"); fi
  if [ -n "\${CBI_BUILD_ARG_NAMES:-}" ]; then
    read -r -a names <<< "$CBI_BUILD_ARG_NAMES"
    for name in "\${names[@]}"; do
      value_var="CBI_ARG_$name"
      export "$name=\${!value_var:-}"
      args+=(--build-arg "$name")
    done
  fi
  echo "Building $CBI_IMAGE from $CBI_DOCKERFILE"
  docker "\${args[@]}" .
)`;

// Pushes every tag and records the digest the registry serves for them. The push output's
// "digest: sha256:…" line is the registry's manifest digest; RepoDigests is the fallback, taking the entry
// of this exact repository. The export happens outside the subshell so CodeBuild's shell keeps it.
const PUSH = `CBI_DIGEST_FILE="$(mktemp)" && (
  set -euo pipefail
  push_log="$(mktemp)"
  read -r -a tags <<< "$CBI_TAGS"
  digest=""
  for tag in "\${tags[@]}"; do
    ref="$CBI_IMAGE:$tag"
    echo "Pushing $ref"
    docker push "$ref" | tee "$push_log"
    pushed="$(sed -n 's/.*digest: \\(sha256:[0-9a-f]\\{64\\}\\).*/\\1/p' "$push_log" | tail -n 1)"
    if [ -z "$pushed" ]; then
      repo_digests="$(docker image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$ref")"
      while IFS= read -r line; do
        if [ "\${line%@*}" = "$CBI_IMAGE" ]; then pushed="\${line#*@}"; break; fi
      done <<< "$repo_digests"
    fi
    if ! [[ "$pushed" =~ ^sha256:[0-9a-f]{64}$ ]]; then
      echo "Cannot tell the digest of $ref: docker push printed none and RepoDigests has no entry for $CBI_IMAGE" >&2
      exit 1
    fi
    if [ -z "$digest" ]; then
      digest="$pushed"
    elif [ "$digest" != "$pushed" ]; then
      echo "Warning: $ref has digest $pushed, the first tag has $digest; reporting $digest" >&2
    fi
  done
  rm -f "$push_log"
  printf '%s' "$digest" > "$CBI_DIGEST_FILE"
) && CBI_DIGEST="$(cat "$CBI_DIGEST_FILE")" && rm -f "$CBI_DIGEST_FILE" &&
export "$CBI_DIGEST_VARIABLE=$CBI_DIGEST" "${IMAGE_REF_VARIABLE}=$CBI_IMAGE@$CBI_DIGEST" &&
echo "Pushed $CBI_IMAGE@$CBI_DIGEST"`;

/** The buildspec (YAML, version 0.2) that builds, tags and pushes the image and exports its digest. */
export function generateBuildspec(s: Settings): string {
  const exported = [...new Set([s.digestVariable, IMAGE_REF_VARIABLE])];
  const phases: Record<string, { commands: string[] }> = {};
  if (s.image.ecr) phases.pre_build = { commands: [LOGIN] };
  phases.build = { commands: [BUILD, PUSH] };
  const doc = { version: 0.2, env: { shell: 'bash', 'exported-variables': exported }, phases };
  return stringify(doc, { lineWidth: 0 });
}

/** The buildspec to send: the user's file, read and checked by readSettings, or a generated one. */
export function resolveBuildspec(s: Settings): string {
  return s.buildspecText ?? generateBuildspec(s);
}
