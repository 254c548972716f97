import { epochSeconds } from './protocol';
import type { EnvVar } from './options';

export type PhaseType =
  | 'SUBMITTED' | 'QUEUED' | 'PROVISIONING' | 'DOWNLOAD_SOURCE' | 'INSTALL' | 'PRE_BUILD'
  | 'BUILD' | 'POST_BUILD' | 'UPLOAD_ARTIFACTS' | 'FINALIZING' | 'COMPLETED';
export type PhaseStatus = 'SUCCEEDED' | 'FAILED' | 'FAULT' | 'TIMED_OUT' | 'STOPPED';
export type BuildStatus = 'IN_PROGRESS' | PhaseStatus;

export interface PhaseContext {
  statusCode: string;
  message: string;
}

interface PhaseRecord {
  phaseType: PhaseType;
  startTime: Date;
  phaseStatus?: PhaseStatus;
  endTime?: Date;
  contexts?: PhaseContext[];
}

/** Everything StartBuild settled (project settings with the overrides applied). */
export interface BuildSettings {
  projectName: string;
  source: { type: string; location?: string; buildspec?: string };
  sourceVersion?: string;
  environment: { type: string; image: string; computeType: string; privilegedMode: boolean; environmentVariables: EnvVar[] };
  timeoutInMinutes: number;
  queuedTimeoutInMinutes: number;
  serviceRole: string;
  /** The project's CloudWatch Logs group. */
  logGroupName: string;
  /** Whether the project's LogsConfig (or logsConfigOverride) names that group, rather than CodeBuild's default. */
  logGroupNamed: boolean;
  idempotencyToken?: string;
  cache?: { type: string; modes: string[] };
  /** Recorded only: the fake has no fleets, so any fleet ARN runs on the same engine. */
  fleet?: { fleetArn: string };
}

/** One build's state as BatchGetBuilds reports it, plus what the fake's /_fake/builds shows. */
export class FakeBuild {
  readonly arn: string;
  readonly startTime = new Date();
  endTime?: Date;
  buildStatus: BuildStatus = 'IN_PROGRESS';
  readonly phases: PhaseRecord[] = [{ phaseType: 'SUBMITTED', startTime: this.startTime }];
  logsStarted = false;
  exported?: { name: string; value: string }[];
  /** Environment the build's shell started with, secret-sourced values redacted. */
  receivedEnv: Record<string, string> = {};
  buildspecText?: string;

  constructor(
    readonly id: string,
    readonly buildNumber: number,
    readonly settings: BuildSettings,
    private readonly region: string,
    private readonly account: string,
  ) {
    this.arn = `arn:aws:codebuild:${region}:${account}:build/${id}`;
  }

  get streamName(): string {
    return this.id.slice(this.id.indexOf(':') + 1);
  }

  get groupName(): string {
    return this.settings.logGroupName;
  }

  get currentPhase(): PhaseType {
    return this.phases[this.phases.length - 1]?.phaseType ?? 'SUBMITTED';
  }

  get done(): boolean {
    return this.buildStatus !== 'IN_PROGRESS';
  }

  /** Ends the current phase with `status` and starts `next`. */
  enterPhase(next: PhaseType, status: PhaseStatus = 'SUCCEEDED', context: PhaseContext = { statusCode: '', message: '' }): void {
    const now = new Date();
    const current = this.phases[this.phases.length - 1];
    if (current && current.endTime === undefined) {
      current.phaseStatus = status;
      current.endTime = now;
      current.contexts = [context];
    }
    this.phases.push({ phaseType: next, startTime: now });
  }

  complete(status: PhaseStatus): void {
    this.buildStatus = status;
    this.endTime = new Date();
  }

  toApi() {
    const s = this.settings;
    // The build's LogsConfig, as StartBuild already answers it: the group only where the project names one.
    const cloudWatchLogs = { status: 'ENABLED', ...(s.logGroupNamed && { groupName: this.groupName }) };
    const logs = this.logsStarted
      ? {
          groupName: this.groupName,
          streamName: this.streamName,
          deepLink: `https://console.aws.amazon.com/cloudwatch/home?region=${this.region}#logsV2:log-groups/log-group/${encodeURIComponent(this.groupName)}/log-events/${this.streamName}`,
          cloudWatchLogsArn: `arn:aws:logs:${this.region}:${this.account}:log-group:${this.groupName}:log-stream:${this.streamName}`,
          cloudWatchLogs,
          s3Logs: { status: 'DISABLED', encryptionDisabled: false },
        }
      : {
          deepLink: `https://console.aws.amazon.com/cloudwatch/home?region=${this.region}#logEvent:group=null;stream=null`,
          cloudWatchLogs,
          s3Logs: { status: 'DISABLED', encryptionDisabled: false },
        };
    return {
      id: this.id,
      arn: this.arn,
      buildNumber: this.buildNumber,
      startTime: epochSeconds(this.startTime),
      ...(this.endTime ? { endTime: epochSeconds(this.endTime) } : {}),
      currentPhase: this.currentPhase,
      buildStatus: this.buildStatus,
      ...(s.sourceVersion === undefined ? {} : { sourceVersion: s.sourceVersion }),
      projectName: s.projectName,
      phases: this.phases.map((p) => ({
        phaseType: p.phaseType,
        ...(p.phaseStatus ? { phaseStatus: p.phaseStatus } : {}),
        startTime: epochSeconds(p.startTime),
        ...(p.endTime
          ? { endTime: epochSeconds(p.endTime), durationInSeconds: Math.floor((p.endTime.getTime() - p.startTime.getTime()) / 1000) }
          : {}),
        ...(p.contexts ? { contexts: p.contexts } : {}),
      })),
      source: { type: s.source.type, ...(s.source.location ? { location: s.source.location } : {}), ...(s.source.buildspec ? { buildspec: s.source.buildspec } : {}), insecureSsl: false },
      secondarySources: [],
      secondarySourceVersions: [],
      artifacts: { location: '' },
      secondaryArtifacts: [],
      cache: s.cache ?? { type: 'NO_CACHE' },
      environment: { ...s.environment, imagePullCredentialsType: 'CODEBUILD', ...(s.fleet ? { fleet: s.fleet } : {}) },
      serviceRole: s.serviceRole,
      logs,
      timeoutInMinutes: s.timeoutInMinutes,
      queuedTimeoutInMinutes: s.queuedTimeoutInMinutes,
      buildComplete: this.done,
      initiator: 'codebuild-image-fake',
      encryptionKey: `arn:aws:kms:${this.region}:${this.account}:alias/aws/s3`,
      ...(this.exported ? { exportedEnvironmentVariables: this.exported } : {}),
    };
  }

  /** The view /_fake/builds gives tests: what the build was asked to do and what it received. */
  toControl() {
    return {
      id: this.id,
      projectName: this.settings.projectName,
      buildStatus: this.buildStatus,
      currentPhase: this.currentPhase,
      /** When StartBuild started the build (ms since the epoch). */
      startTime: this.startTime.getTime(),
      /** When the build completed (ms since the epoch), or null while it runs. */
      endTime: this.endTime?.getTime() ?? null,
      source: this.settings.source,
      environment: this.settings.environment,
      timeoutInMinutes: this.settings.timeoutInMinutes,
      queuedTimeoutInMinutes: this.settings.queuedTimeoutInMinutes,
      idempotencyToken: this.settings.idempotencyToken ?? null,
      buildspec: this.buildspecText ?? null,
      env: this.receivedEnv,
      exportedEnvironmentVariables: this.exported ?? null,
    };
  }
}
