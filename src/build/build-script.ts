/**
 * The shell script the generated buildspec runs on the CodeBuild host. It travels in the buildspec's `env.variables`
 * as CBI_SH and each buildspec command is one short line (`bash -c "$CBI_SH" build`), so the job log shows the
 * build's output rather than our shell. User values arrive only as environment variables (see BuildEnv in
 * src/build/buildspec.ts); nothing the user typed is ever part of this text.
 *
 * Steps:
 * - `prepare`: a BuildKit engine that can export registry caches and attestations (see engine() below), then the
 *   registry logins: ECR with the build role, other registries with credentials CodeBuild resolved by reference.
 * - `build`: `docker buildx build --push` with the registry cache, BuildKit secrets and attestations; writes the
 *   exports file that the buildspec's last command sources, so CodeBuild exports the digest.
 *
 * A plain template literal: `\${` and `\\` stand for bash's `${` and `\`.
 * bash 4.2 compatible (Amazon Linux 2 images): no `mapfile -d`, and empty arrays are never expanded under `set -u`.
 */
export const BUILD_SCRIPT = `set -euo pipefail
step=$0

warn() { printf 'Warning: %s\\n' "$*"; }

# Whether the engine keeps its images in containerd (a containerd snapshotter as its storage driver).
uses_containerd_store() {
  local info
  if info="$(engine_info)"; then
    info="\${info#*'"DriverStatus":'}"
    # A list of pairs; null (the vfs driver) or none at all is no containerd store.
    [[ "$info" == '[['* && "\${info%%]]*}" == *io.containerd.snapshotter* ]]
  else
    docker info --format '{{json .DriverStatus}}' 2>/dev/null | grep -q 'io.containerd.snapshotter'
  fi
}

# The engine's /info from its API, where docker itself would use a local socket (DOCKER_HOST, else no context
# chosen): one curl, where docker info first runs every CLI plugin's metadata command (two processes, a fifth of a
# CPU-second). Fails otherwise, or without curl.
engine_info() {
  local host=\${DOCKER_HOST:-}
  if [ -z "$host" ]; then
    if [ -n "\${DOCKER_CONTEXT:-}" ] || grep -qs '"currentContext"' "$(docker_config)/config.json"; then return 1; fi
    host=unix:///var/run/docker.sock
  fi
  [[ "$host" == unix://* ]] && command -v curl > /dev/null || return 1
  curl -sf --max-time 10 --unix-socket "\${host#unix://}" http://localhost/info
}

# Whether the engine answers.
engine_up() {
  engine_info > /dev/null || docker info > /dev/null 2>&1
}

# docker's configuration directory (the logins, the chosen context).
docker_config() {
  local home=~
  printf '%s' "\${DOCKER_CONFIG:-$home/.docker}"
}

# Alive and not a zombie (an exited dockerd stays one until its parent reaps it).
running() {
  local state=""
  [ -r "/proc/$1/stat" ] && read -r _ _ state _ < "/proc/$1/stat" && [ "$state" != Z ]
}

# CodeBuild's images start dockerd on overlay2 without the containerd image store, where BuildKit's default
# driver exports neither registry caches nor attestations. Restart it, with the same arguments, on that store.
restart_on_containerd_store() {
  local pidfile=\${CBI_DOCKERD_PIDFILE:-/var/run/docker.pid} log=\${CBI_DOCKERD_LOG:-/var/log/docker.log} pid arg
  local -a argv=()
  if ! engine_up || [ ! -r "$pidfile" ]; then
    echo "No Docker engine runs in this build (it did not answer, or no $pidfile): the project must run builds in privileged mode" >&2
    exit 1
  fi
  pid=$(cat "$pidfile")
  while IFS= read -r -d '' arg; do argv+=("$arg"); done < "/proc/$pid/cmdline"
  echo "Restarting dockerd on the containerd image store (for registry cache export and attestations)"
  kill "$pid"
  for _ in $(seq 1 60); do running "$pid" || break; sleep 0.5; done
  if running "$pid"; then echo "dockerd (PID $pid) did not stop within 30 s" >&2; exit 1; fi
  setsid nohup "\${argv[@]}" --feature containerd-snapshotter=true >> "$log" 2>&1 < /dev/null &
  for _ in $(seq 1 120); do engine_up && break; sleep 0.5; done
  if ! uses_containerd_store; then echo "dockerd did not come back on the containerd image store; see $log" >&2; exit 1; fi
}

engine() {
  case "$CBI_BUILDER" in
    containerd-store)
      if uses_containerd_store; then echo "Builder: Docker engine on the containerd image store"; else restart_on_containerd_store; fi ;;
    docker-container)
      docker buildx create --name codebuild-image --driver docker-container --driver-opt "image=$CBI_BUILDKIT_IMAGE" --driver-opt network=host --use --bootstrap > /dev/null
      echo "Builder: docker-container from $CBI_BUILDKIT_IMAGE" ;;
    docker)
      echo "Builder: the Docker engine as it is" ;;
    *) echo "Unknown builder $CBI_BUILDER" >&2; exit 1 ;;
  esac
}

# Whether the active builder can export registry caches and attestations. prepare has already put the engine on the
# containerd store for containerd-store (or failed the build), so only the docker builder asks the engine.
full_builder() {
  case "$CBI_BUILDER" in
    docker-container|containerd-store) true ;;
    *) uses_containerd_store ;;
  esac
}

# Emulation builds every platform of CBI_PLATFORM on this host: each foreign architecture needs QEMU's binfmt
# handler, which CodeBuild's images lack; CBI_BINFMT_IMAGE installs them (a privileged container, once per host).
emulators() {
  local platform arch qemu host missing=""
  host="$(uname -m)"
  IFS=, read -r -a platforms <<< "\${CBI_PLATFORM:-}"
  for platform in "\${platforms[@]}"; do
    arch="\${platform#*/}"; arch="\${arch%%/*}"
    case "$arch" in amd64) qemu=x86_64 ;; arm64) qemu=aarch64 ;; 386) qemu=i386 ;; *) qemu="$arch" ;; esac
    if [ "$qemu" != "$host" ] && [ ! -e "/proc/sys/fs/binfmt_misc/qemu-$qemu" ]; then missing="$missing $qemu"; fi
  done
  if [ -z "$missing" ]; then echo "Emulation: QEMU handlers present for $CBI_PLATFORM"; return; fi
  if [ -z "\${CBI_BINFMT_IMAGE:-}" ]; then
    echo "No QEMU handler for$missing on this host: set binfmt_image to an image of tonistiigi/binfmt your builds can pull" >&2
    exit 1
  fi
  echo "Installing QEMU handlers for$missing from $CBI_BINFMT_IMAGE"
  docker run --privileged --rm "$CBI_BINFMT_IMAGE" --install all > /dev/null
}

# ECR registries with the build role; every other registry with the credentials CodeBuild resolved from the
# references of registry_credentials. Passwords reach docker on its standard input only, never an argument.
login() {
  local item host i=0 user password credential user_var password_var credential_var how refused
  local -a items
  if [ -n "\${CBI_ECR_REGISTRIES:-}" ]; then
    read -r -a items <<< "$CBI_ECR_REGISTRIES"
    for item in "\${items[@]}"; do
      host="\${item#*=}"
      echo "Logging in to $host (ECR, with the build role)"
      aws ecr get-login-password --region "\${item%%=*}" | docker login --username AWS --password-stdin "$host" > /dev/null
    done
  fi
  if [ -z "\${CBI_LOGIN_REGISTRIES:-}" ]; then return; fi
  read -r -a items <<< "$CBI_LOGIN_REGISTRIES"
  for host in "\${items[@]}"; do
    user_var="CBI_LOGIN_USER_$i" password_var="CBI_LOGIN_PASSWORD_$i" credential_var="CBI_LOGIN_CREDENTIAL_$i"
    i=$((i + 1))
    user="\${!user_var:-}" password="\${!password_var:-}" credential="\${!credential_var:-}"
    if [ -n "$credential" ] && [ "\${credential:0:1}" = "{" ]; then
      user="$(printf '%s' "$credential" | jq -r '.username // empty')"
      password="$(printf '%s' "$credential" | jq -r '.password // empty')"
    elif [[ "$credential" == *:* ]]; then
      user="\${credential%%:*}" password="\${credential#*:}"
    elif [ -n "$credential" ]; then
      user="" password=""
    fi
    if [ -z "$user" ] || [ -z "$password" ]; then
      echo "The credentials registry_credentials names for $host have no username or no password: store {\\"username\\",\\"password\\"} in the secret, or username:password in the parameter" >&2
      exit 1
    fi
    if [ "$host" = "\${CBI_JOB_TOKEN_REGISTRY:-}" ]; then
      how=" with the job token" refused="$host refused the job token: the job's project must be allowed there; or give registry_credentials for $host"
    else
      how="" refused="$host refused the credentials registry_credentials names for it: check the username and password stored there"
    fi
    echo "Logging in to $host$how"
    if ! printf '%s' "$password" | docker login --username "$user" --password-stdin "$host" > /dev/null; then
      echo "$refused" >&2
      exit 1
    fi
  done
}

# After a failed build: when a registry refused access, one line naming it and the input that fixes it.
explain_auth_failure() {
  local line host import
  # Not the cache import's refusal: it never fails the build (cache_warnings says what it means).
  import="$(step_number "$1" 'importing cache manifest from ')"
  line="$(grep -v "^\${import:-#-} " "$1" | grep -m 1 -iE '401 Unauthorized|no basic auth credentials|unauthorized:|authentication required|pull access denied|403 Forbidden|denied:' || true)"
  if [ -z "$line" ]; then return; fi
  # The image the error names tells the registry; a token service's URL (auth.docker.io, gitlab.com/jwt/auth) would not.
  host="$(printf '%s' "$line" | grep -oE '(metadata for|failed to push|pull access denied for) [^ ,:/]+(:[0-9]+)?/' | head -n 1 | sed -E 's#.* ##; s#/$##' || true)"
  if [ -z "$host" ]; then host="$(printf '%s' "$line" | grep -oE 'https?://[^/ ]+' | head -n 1 | sed -E 's#^https?://##' || true)"; fi
  case "$host" in auth.docker.io|registry-1.docker.io|index.docker.io) host=docker.io ;; esac
  host="\${host:-the registry}"
  if [ "$host" = "\${CBI_JOB_TOKEN_REGISTRY:-}" ]; then
    echo "Error: $host refused access with the job token: this job's project may pull and push only its own and allowed projects' images there; or give registry_credentials for $host" >&2
    return
  fi
  case " \${CBI_LOGIN_REGISTRIES:-} " in
    *" $host "*) echo "Error: $host refused access with the credentials registry_credentials names for it: check that this user may pull and push there" >&2; return ;;
  esac
  case " \${CBI_ECR_REGISTRIES:-} " in
    *"=$host "*) echo "Error: $host (ECR) refused access: let the CodeBuild project's role pull and push there" >&2; return ;;
  esac
  if [[ "$host" =~ ^[0-9]{12}\\.dkr[.-]ecr ]]; then
    echo "Error: $host (ECR) refused access: add it to ecr_registries and let the CodeBuild project's role pull from it" >&2
  else
    echo "Error: $host asked for credentials: set registry_credentials: [\\"$host=secretsmanager:<secret-id>\\"] (a secret {\\"username\\",\\"password\\"}) or [\\"$host=ssm:<parameter>\\"]" >&2
  fi
}

# The number (#N) of the first BuildKit step named $2 in the plain progress file $1, if there is one.
step_number() {
  grep -m 1 -E "^#[0-9]+ $2" "$1" | cut -d ' ' -f 1 || true
}

# That step's ERROR line, if it failed.
step_error() {
  local step
  step="$(step_number "$1" "$2")"
  if [ -n "$step" ]; then grep -m 1 "^$step ERROR" "$1" || true; fi
}

# BuildKit builds on without a registry cache it cannot read, and ignore-error=true keeps a failed export from
# failing the build: each logs one step's ERROR line. Say what it means for this build and the next; the read
# alone after a failed build (its import error is no cause of the failure).
cache_warnings() {
  local read_error write_error="" fills=""
  read_error="$(step_error "$1" 'importing cache manifest from ')"
  if [ "$2" = after-success ]; then
    write_error="$(step_error "$1" 'exporting cache to registry$')"
    if [ -z "$write_error" ]; then fills="; this build fills it"; fi
  fi
  if [[ "$read_error" == *"not found"* ]]; then
    warn "no layer cache at $CBI_CACHE_REF yet$fills"
  elif [ -n "$read_error" ]; then
    warn "the layer cache at $CBI_CACHE_REF could not be read (BuildKit's ERROR line above says why); this build ran without it"
  fi
  if [ -n "$write_error" ]; then
    warn "the layer cache could not be written to $CBI_CACHE_REF (BuildKit's ERROR line above says why); the image was pushed, the next build starts cold. Let the build role push there, or set cache_ref"
  fi
}

exports_file() {
  printf '%s/codebuild-image-%s.env' "\${TMPDIR:-/tmp}" "\${CODEBUILD_BUILD_ID##*:}"
}

# Runs docker with the build args (CBI_BUILD_ARG_NAMES, values in CBI_ARG_<name>) in its environment alone. They
# may be named like this shell's or docker's own variables (PATH, HOME, DOCKER_CONFIG, UID…), so docker, env(1)
# and docker's configuration (the logins) are found first and kept in the positional parameters, then a subshell
# exports the values and execs docker: they never become this shell's variables, and are on no command line
# (secret_build_args_as: build-arg makes secrets of them). Names bash keeps read-only (UID, EUID, PPID) cannot be
# exported (the subshell would exit): env(1) sets those few. __cbi_* are the only variables a build arg could clobber.
docker_with_build_args() {
  set -- "$(command -v env)" "$(command -v docker)" --config "$(docker_config)" "$@"
  (
    __cbi_ro=()
    for __cbi_n in \${CBI_BUILD_ARG_NAMES:-}; do
      __cbi_v="CBI_ARG_$__cbi_n"
      __cbi_f="$(declare -p "$__cbi_n" 2>/dev/null || true)"
      __cbi_f="\${__cbi_f#declare -}"
      case "\${__cbi_f%% *}" in
        *r*) __cbi_ro+=("$__cbi_n=\${!__cbi_v:-}") ;;
        *) export "$__cbi_n=\${!__cbi_v:-}" ;;
      esac
    done
    exec "$1" \${__cbi_ro[@]+"\${__cbi_ro[@]}"} "\${@:2}"
  )
}

build() {
  cd "\${CODEBUILD_SRC_DIR:-.}"
  local meta progress name full=false
  meta="$(mktemp)"
  if full_builder; then full=true; fi
  local -a tags args
  read -r -a tags <<< "$CBI_TAGS"
  args=(buildx build --progress plain --push --metadata-file "$meta" --file "$CBI_DOCKERFILE")
  for tag in "\${tags[@]}"; do args+=(--tag "$CBI_IMAGE:$tag"); done
  if [ -n "\${CBI_TARGET:-}" ]; then args+=(--target "$CBI_TARGET"); fi
  if [ -n "\${CBI_PLATFORM:-}" ]; then args+=(--platform "$CBI_PLATFORM"); fi
  if [ -n "\${CBI_BUILD_NETWORK:-}" ]; then args+=(--network "$CBI_BUILD_NETWORK"); fi
  # Values reach docker through its environment (--build-arg NAME, --secret env=…), never its command line:
  # see docker_with_build_args.
  if [ -n "\${CBI_BUILD_ARG_NAMES:-}" ]; then
    read -r -a names <<< "$CBI_BUILD_ARG_NAMES"
    for name in "\${names[@]}"; do args+=(--build-arg "$name"); done
  fi
  if [ -n "\${CBI_SECRET_NAMES:-}" ]; then
    read -r -a names <<< "$CBI_SECRET_NAMES"
    for name in "\${names[@]}"; do args+=(--secret "id=$name,env=CBI_ARG_$name"); done
  fi
  if [ -n "\${CBI_CACHE_REF:-}" ]; then
    if [ "$full" = true ]; then
      # Neither a missing cache (normal for a first build) nor one that cannot be written fails the build: see
      # cache_warnings. Not asked beforehand: that would be another registry round trip and three docker processes.
      args+=(--cache-from "type=registry,ref=$CBI_CACHE_REF")
      args+=(--cache-to "type=registry,ref=$CBI_CACHE_REF,mode=max,image-manifest=true,oci-mediatypes=true,ignore-error=true")
    else
      warn "this builder cannot export a registry cache (builder containerd-store enables it); building without one"
    fi
  fi
  if [ "\${CBI_ATTESTATIONS:-false}" = true ] && [ "$full" = true ]; then
    args+=(--provenance "mode=max")
    if [ "\${CBI_SBOM:-false}" = true ]; then args+=(--sbom=true); fi
  else
    if [ "\${CBI_ATTESTATIONS:-false}" = true ]; then warn "this builder cannot make attestations (builder containerd-store enables them); none attached"; fi
    args+=(--provenance=false --sbom=false)
  fi
  echo "Building $CBI_IMAGE from $CBI_DOCKERFILE"
  progress="$(mktemp)"
  if ! docker_with_build_args "\${args[@]}" . 2>&1 | tee "$progress"; then
    cache_warnings "$progress" after-failure
    explain_auth_failure "$progress"
    rm -f "$progress"
    exit 1
  fi
  cache_warnings "$progress" after-success
  rm -f "$progress"

  # The digest the tags point to: the image index when attestations are attached, else the manifest.
  local digest media_type
  digest="$(grep -oE '"containerimage.digest": *"sha256:[0-9a-f]{64}"' "$meta" | grep -oE 'sha256:[0-9a-f]{64}' || true)"
  media_type="$(grep -oE '"mediaType": *"[^"]*"' "$meta" | head -n 1 | cut -d '"' -f 4 || true)"
  rm -f "$meta"
  if [ -z "$digest" ]; then echo "docker buildx reported no image digest for $CBI_IMAGE" >&2; exit 1; fi
  {
    printf 'export %s=%q\\n' "$CBI_DIGEST_VARIABLE" "$digest"
    printf 'export IMAGE_REF=%q\\n' "$CBI_IMAGE@$digest"
    printf 'export IMAGE_MEDIA_TYPE=%q\\n' "$media_type"
  } > "$(exports_file)"
  echo "Pushed $CBI_IMAGE@$digest"
}

case "$step" in
  # Logged in first: the BuildKit and binfmt images may come from those registries (the login is in the client's
  # config, so it outlives a dockerd restart).
  prepare) login; engine; if [ "\${CBI_EMULATION:-false}" = true ]; then emulators; fi ;;
  build) build ;;
  *) echo "Unknown step $step: use prepare or build" >&2; exit 1 ;;
esac
`;

/** The buildspec command that loads what `build` exported into CodeBuild's shell (exported-variables). */
export const LOAD_EXPORTS = '. "${TMPDIR:-/tmp}/codebuild-image-${CODEBUILD_BUILD_ID##*:}.env"';
