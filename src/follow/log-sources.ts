/**
 * The build log's two sources, a Live Tail session and the GetLogEvents reader: each line either delivers is
 * shown once, through the phase renderer into the job log and build.log. The follower decides when to ask them.
 */
import type { BuildPhase } from '@aws-sdk/client-codebuild';
import type { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { AwsLimits } from '../inputs/limits';
import type { Output } from '../shared/console';
import { errorName } from '../shared/errors';
import { JobLog } from './job-log';
import { EventSet, LiveTail, logGroupArn } from './live-tail';
import { LogReader } from './log-reader';
import { PhaseRenderer, type LogEvent } from './phases';

export interface LogSourcesDeps {
  logs: CloudWatchLogsClient;
  out: Output;
  /** The build.log artifact; without it the full log is not written. */
  logFile?: string;
  /** Bytes of build log the job log may hold (default STREAMED_LOG_LIMIT). */
  jobLogLimit?: number;
}

/** Reads, tails and shows one build's log. */
export class LogSources {
  private readonly renderer = new PhaseRenderer();
  private readonly jobLog: JobLog;
  private reader: LogReader | undefined;
  private tail: LiveTail | undefined;
  private tailTried = false;
  /** The lines from before the session started were read. */
  private caughtUp = false;
  /** Lines the reader printed that Live Tail may deliver again, and lines Live Tail printed that a read will. */
  private readonly fromReads = new EventSet();
  private readonly fromTail = new EventSet();
  private logsOff = false;

  constructor(
    private readonly deps: LogSourcesDeps,
    /** The phases BatchGetBuilds reported last: the renderer stamps sections with CodeBuild's own times. */
    private readonly phases: () => BuildPhase[],
    private readonly signal: AbortSignal | undefined,
  ) {
    this.jobLog = new JobLog(deps.out, { ...(deps.logFile && { file: deps.logFile }), ...(deps.jobLogLimit && { limit: deps.jobLogLimit }) });
  }

  /** The log shows the build's last commands ended: its end is seconds away. */
  get ending(): boolean {
    return this.renderer.ending;
  }

  /** The log can be read: its stream is known, and neither disabled nor denied. */
  get readable(): boolean {
    return this.reader !== undefined && !this.logsOff;
  }

  /** A Live Tail session runs. */
  get tailing(): boolean {
    return this.tail !== undefined;
  }

  /** The build named its stream: the reader reads it from here on (the first name counts). */
  useStream(group: string, name: string): void {
    if (!this.reader) this.reader = new LogReader(this.deps.logs, { group, name });
  }

  /** The project writes no CloudWatch log: says so once, with the build's link to its logs. */
  disabled(deepLink: string | undefined): void {
    if (this.logsOff) return;
    this.logsOff = true;
    this.deps.out.warn(`CloudWatch Logs are disabled for this CodeBuild project, so the build log is not shown here${deepLink ? `: ${deepLink}` : ''}`);
  }

  /** Tried once: a Live Tail session on the build's stream (`streamArn` from the build); true when it runs. */
  async startTail(streamArn: string | undefined): Promise<boolean> {
    if (this.tailTried) return false;
    this.tailTried = true;
    const group = logGroupArn(streamArn);
    if (!group || !this.reader) return false;
    try {
      this.tail = await LiveTail.start(this.deps.logs, group, this.reader.stream.name);
      return true;
    } catch (e) {
      const name = errorName(e) ?? 'Error';
      const why = name === 'LimitExceededException'
        ? `the account's ${AwsLimits.liveTailSessions.max} concurrent Live Tail sessions are in use (other jobs' builds, or the console)`
        : 'the role needs logs:StartLiveTail to follow it with fewer requests';
      this.deps.out.info(`Following the log by polling: StartLiveTail failed (${name}); ${why}.`);
      return false;
    }
  }

  /** A session that ended or sampled the lines is dropped, with one line on why: reads follow the log from here. */
  dropEndedTail(): void {
    if (!this.tail || !(this.tail.ended || this.tail.sampled)) return;
    this.deps.out.info(`Following the log by polling from here: Live Tail ${this.tail.sampled ? 'sampled the lines (over 500 a second)' : `ended (${this.tail.reason ?? 'closed'})`}.`);
    this.tail.stop();
    this.tail = undefined;
  }

  /** Once a session runs: first what the log held before it started (the session's lines wait in its queue). */
  async catchUp(): Promise<void> {
    if (this.caughtUp) return;
    await this.read(false);
    this.caughtUp = true;
  }

  /** Shows what Live Tail pushed since the last call; returns how many lines were new. */
  takeTail(): number {
    return this.tail ? this.show(this.tail.take(), 'tail') : 0;
  }

  /** Reads the stream where the last read ended (a drain: to its very end) and shows the new lines; returns how many. */
  async read(drain: boolean): Promise<number> {
    if (!this.reader) return 0;
    const { events } = await this.reader.read({ drain, maxPages: drain ? Infinity : 20, ...(this.signal && { signal: this.signal }) });
    if (this.reader.denied && !this.logsOff) {
      this.logsOff = true;
      this.deps.out.warn(`Cannot read the build log (AccessDeniedException): the role needs logs:GetLogEvents on log group ${this.reader.stream.group}. Following the build status only.`);
    }
    return this.show(events, 'read');
  }

  /** The build is complete: the session ends, and the stream is read to its end. */
  async drain(): Promise<void> {
    this.tail?.stop();
    this.tail = undefined;
    await this.read(true);
  }

  /** After the drain: closes the sections and adds the phases that wrote nothing. */
  finish(phases: BuildPhase[], buildStatus: string | undefined): void {
    this.jobLog.show(this.renderer.finish(phases, buildStatus));
  }

  /** Following stopped early: the session ends, and the open section closes where the log stopped. */
  abort(): void {
    this.tail?.stop();
    this.jobLog.show(this.renderer.abort());
  }

  /** Ends the session, if one runs (following ended, however it ended). */
  stop(): void {
    this.tail?.stop();
  }

  /** Prints the events no other source printed; returns how many. */
  private show(events: LogEvent[], from: 'tail' | 'read'): number {
    const [mine, other] = from === 'tail' ? [this.fromTail, this.fromReads] : [this.fromReads, this.fromTail];
    const fresh = events.filter((e) => !other.remove(e));
    // Only while a session runs may the other source deliver the same lines again.
    if (this.tail) for (const e of fresh) mine.add(e);
    this.jobLog.record(fresh);
    this.jobLog.show(this.renderer.render(fresh, this.phases()));
    return fresh.length;
  }
}
