/**
 * The program's settings, parsed once from the environment by `readSettings` (src/inputs/read-settings.ts).
 * Every template input `foo_bar` reaches the program as the variable `CODEBUILD_IMAGE_FOO_BAR`.
 */

/** A parsed image repository reference such as `123456789012.dkr.ecr.eu-west-1.amazonaws.com/app`. */
export interface ImageRepository {
  /** Registry host (with port), e.g. `123456789012.dkr.ecr.eu-west-1.amazonaws.com` or `127.0.0.1:5000`. */
  registry: string;
  /** Repository path inside the registry, e.g. `team/app`. */
  path: string;
  /** `registry/path`, no tag and no digest. */
  name: string;
  /** Present when the registry is a private ECR registry. */
  ecr?: { account: string; region: string };
}

export interface BuildArg {
  name: string;
  value: string;
}

/** A build arg whose value CodeBuild reads from Secrets Manager or Parameter Store. */
export interface SecretBuildArg {
  name: string;
  type: 'SECRETS_MANAGER' | 'PARAMETER_STORE';
  /** The CodeBuild reference: `secret-id[:json-key[:version-stage[:version-id]]]` or a parameter name. */
  reference: string;
}

/** A registry the build logs in to with a username and password CodeBuild resolves (registry_credentials). */
export interface RegistryLogin {
  /** Host with optional :port, as in image references, e.g. `registry.gitlab.com`. */
  registry: string;
  /**
   * SECRETS_MANAGER: a secret id or ARN whose value is JSON `{"username", "password"}` (read by json key).
   * PARAMETER_STORE: a parameter holding `username:password` or that JSON.
   */
  type: 'SECRETS_MANAGER' | 'PARAMETER_STORE';
  reference: string;
  /**
   * The job's own CI_JOB_TOKEN for GitLab's registry: the job writes `gitlab-ci-token:<token>` to the parameter
   * `reference` (a short-lived SecureString) before StartBuild and deletes it when the builds end (src/registry/job-token.ts).
   */
  jobToken?: true;
}

/** What the job knows about itself from GitLab's predefined variables. */
export interface GitLabJob {
  /** `CI_SERVER_URL`, e.g. https://gitlab.com */
  serverUrl: string | undefined;
  /** `CI_API_V4_URL` */
  apiUrl: string | undefined;
  projectPath: string | undefined;
  /** `CI_PROJECT_ID` */
  projectId: string | undefined;
  /** `CI_REGISTRY`, the host of this GitLab's container registry, e.g. registry.gitlab.com */
  registry: string | undefined;
  pipelineId: string | undefined;
  pipelineUrl: string | undefined;
  jobId: string | undefined;
  jobUrl: string | undefined;
  jobName: string | undefined;
  commitSha: string | undefined;
  ref: string | undefined;
  /** `CI_JOB_TOKEN`; secret. Watches the job's own status, and logs in to GitLab's registry (RegistryLogin.jobToken). */
  jobToken: string | undefined;
}

/** How the generated buildspec gets a BuildKit that can export caches and attestations (src/build/build-script.ts). */
export type Builder = 'containerd-store' | 'docker-container' | 'docker';

export interface BuildKitSettings {
  builder: Builder;
  /** moby/buildkit image for the docker-container builder. */
  buildkitImage: string | undefined;
  /** Image that installs QEMU's binfmt handlers on the build host, for `emulation` where none are registered. */
  binfmtImage: string | undefined;
  /** Registry cache reference (`repository:tag`); undefined turns the cache off. */
  cacheRef: string | undefined;
  /** SLSA provenance (mode=max) attached to the image. */
  attestations: boolean;
  /** An SBOM too (BuildKit's scanner image is pulled from Docker Hub). */
  sbom: boolean;
  /** Secret build args as BuildKit secrets (never in the image), or, explicitly, as plain build args. */
  secretsAs: 'secret' | 'build-arg';
}

/** One platform of a multi-platform image, built natively on its own project. */
export interface PlatformBuild {
  /** e.g. `linux/arm64` */
  platform: string;
  projectName: string;
}

export interface Settings {
  /** AWS region of the CodeBuild project, bucket and logs. */
  region: string;
  /** Role to assume with the OIDC token; undefined means the standard credential chain. */
  roleArn: string | undefined;
  /** Name of the variable that holds the GitLab OIDC token (`id_tokens`). */
  idTokenVariable: string;
  /** The OIDC token itself; secret. Undefined when the variable is unset or empty. */
  idToken: string | undefined;
  /** The audience the template asked GitLab to put in the token; only used in error explanations. */
  oidcAudience: string | undefined;
  /** AssumeRoleWithWebIdentity session duration, seconds (900–43200). */
  sessionDuration: number;

  /** The shared CodeBuild project. */
  projectName: string;
  s3Bucket: string;
  /** Key prefix without leading or trailing slash, e.g. `codebuild-image`. */
  s3Prefix: string;

  /** Absolute path of the build context, inside the checkout. */
  contextDir: string;
  /** Dockerfile path relative to the context, POSIX separators. */
  dockerfile: string;
  target: string | undefined;
  /** e.g. `linux/amd64`; with `emulation`, every platform of `platforms`, comma-separated. */
  platform: string | undefined;
  /** Two or more platforms, one native build each, joined in one image index; empty otherwise. */
  platformBuilds: PlatformBuild[];
  /** All platforms in one build through QEMU. */
  emulation: boolean;
  buildArgs: BuildArg[];
  secretBuildArgs: SecretBuildArg[];
  image: ImageRepository;
  /** Registries the build logs in to before building, with credentials by reference. */
  registryLogins: RegistryLogin[];
  /** ECR registries the build logs in to with its role: the image's, the cache's and those of ecr_registries. */
  ecrRegistries: { registry: string; region: string }[];
  /** At least one tag. */
  tags: string[];

  /** Path of a user buildspec relative to the checkout root; undefined means generate one. */
  buildspec: string | undefined;
  /** The user buildspec's text, read and checked by readSettings; undefined when generated. */
  buildspecText: string | undefined;
  /** Exported variable that carries the pushed digest (`sha256:…`). */
  digestVariable: string;

  computeType: string | undefined;
  buildImage: string | undefined;
  environmentType: string | undefined;
  /** Minutes, 5–2160. */
  buildTimeout: number | undefined;
  /** Minutes, 5–480. */
  queuedTimeout: number | undefined;

  buildkit: BuildKitSettings;
  /** No build when an image built from the same inputs is in the registry (src/build/unchanged.ts). */
  skipUnchanged: boolean;
  /** CodeBuild's LOCAL_DOCKER_LAYER_CACHE, through cacheOverride. */
  localLayerCache: boolean;
  /** Reserved-capacity fleet, through fleetOverride. */
  fleetArn: string | undefined;
  /** KMS key or alias ARN that signs what the job pushed, as cosign does (src/sign/); undefined: no signing. */
  signWith: string | undefined;

  /** Real path of the checkout (CI_PROJECT_DIR, or the working directory). */
  checkoutDir: string;
  /** Directory for the build-id file, dotenv, JSON record and annotations. */
  reportDir: string;
  /** Prefix for dotenv variable names, e.g. `API_` gives `API_IMAGE_DIGEST`. */
  dotenvPrefix: string;

  gitlab: GitLabJob;
}
