import type { ConnectionFacts } from './agents';

/** Exit codes of dist/index.js, documented in the README. */
export const ExitCode = {
  Success: 0,
  /** The build ran but did not succeed (FAILED, FAULT, TIMED_OUT, STOPPED), or its image could not be signed. */
  BuildFailed: 1,
  /** An input is invalid; nothing was sent to AWS. */
  BadInput: 2,
  /** AWS or the network failed (credentials, S3, CodeBuild, Logs). */
  AwsError: 3,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** One problem with one input: `input` is the template input name, e.g. `s3_bucket`. */
export interface InputProblem {
  input: string;
  message: string;
}

/** Every input problem found, reported together before any network call. */
export class InputError extends Error {
  constructor(readonly problems: InputProblem[]) {
    super(problems.map((p) => `${p.input}: ${p.message}`).join('\n'));
    this.name = 'InputError';
  }
}

/** A failed AWS or network step; `step` says what was being attempted. */
export class AwsStepError extends Error {
  constructor(
    readonly step: string,
    override readonly cause: unknown,
    readonly hint?: string,
  ) {
    const network = connectionFailure(cause);
    const reason = network ?? (cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause));
    super(`${step} failed: ${reason}${hint && !network ? `\n${hint}` : ''}`);
    this.name = 'AwsStepError';
  }
}

/** Problems found in the build context while listing or packing it (e.g. an invalid .dockerignore). */
export class ContextError extends Error {
  override name = 'ContextError';
  /** Each problem on its own; a problem may span lines (a list of paths). */
  readonly problems: string[];
  constructor(problems: string | string[], options?: ErrorOptions) {
    const list = typeof problems === 'string' ? [problems] : problems;
    super(list.join('\n'), options);
    this.problems = list;
  }
}

/** A report value that GitLab could not read back; nothing was written. */
export class ReportError extends Error {
  override name = 'ReportError';
}

/** Runs `fn`, wrapping any failure in an AwsStepError that names the step. */
export async function awsStep<T>(step: string, fn: () => Promise<T>, hint?: (e: unknown) => string | undefined): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof AwsStepError) throw e;
    throw new AwsStepError(step, e, hint?.(e));
  }
}

/** A registry refused or failed a request of the job's own (the multi-platform image index). */
export class RegistryError extends AwsStepError {
  constructor(step: string, reason: string, hint?: string) {
    super(step, Object.assign(new Error(reason), { name: 'RegistryError' }), hint);
    this.name = 'RegistryError';
  }
}

/** The fields of an SDK error the classifiers read (names and codes, never the message text). */
interface SdkError {
  name?: string;
  code?: string;
  $retryable?: { throttling?: boolean };
  $metadata?: { httpStatusCode?: number };
}

const THROTTLING = new Set(['ThrottlingException', 'ThrottledException', 'TooManyRequestsException', 'Throttling', 'RequestLimitExceeded']);
const TRANSIENT_NAMES = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException', 'InternalFailure', 'ServiceUnavailable', 'ServiceUnavailableException', 'InternalServerError']);
const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH']);

export function errorName(e: unknown): string | undefined {
  return (e as SdkError | undefined)?.name;
}

/** AWS asked to slow down: by the error's name, the SDK's own classification or HTTP 429. */
export function isThrottling(e: unknown): boolean {
  const err = e as SdkError | undefined;
  return THROTTLING.has(err?.name ?? '') || err?.$retryable?.throttling === true || err?.$metadata?.httpStatusCode === 429;
}

/** A failure that may pass on its own: 5xx, timeouts, dropped connections, or anything the SDK marks retryable. */
export function isTransient(e: unknown): boolean {
  const err = e as SdkError | undefined;
  const status = err?.$metadata?.httpStatusCode ?? 0;
  return Boolean(err?.$retryable) || status >= 500 || TRANSIENT_NAMES.has(err?.name ?? '') || NETWORK_CODES.has(err?.code ?? '');
}

/** Node's codes for a server certificate it did not accept. */
const UNTRUSTED = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
]);
const WRONG_HOST = 'ERR_TLS_CERT_ALTNAME_INVALID';
const UNREACHABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT']);

/**
 * One line for a connection that failed before it was ready, naming the host, the proxy in between and what
 * would fix it (a CA variable, the proxy variables); undefined for any other failure. A TLS failure is never
 * answered by turning verification off: the fix is the CA that signs the certificate.
 */
export function connectionFailure(e: unknown): string | undefined {
  const facts = (e as { connection?: ConnectionFacts } | undefined)?.connection;
  if (!facts || facts.stage !== 'connect') return undefined;
  const code = (e as { code?: unknown }).code;
  const why = typeof code === 'string' ? code : e instanceof Error ? e.message : String(e);
  const via = facts.proxy && facts.proxy !== facts.target ? ` through the proxy ${facts.proxy}` : '';
  if (typeof code === 'string' && UNTRUSTED.has(code)) {
    return `TLS to ${facts.target}${via}: its certificate is not signed by a CA this job trusts (${code}); give the PEM file of the CA that signs it (a TLS-intercepting proxy's own CA, for one) in ${facts.caVariable}`;
  }
  if (code === WRONG_HOST) {
    return `TLS to ${facts.target}${via}: its certificate is for another host name (${code}); check the endpoint's URL, or, behind a TLS-intercepting proxy, give that proxy's CA in ${facts.caVariable}`;
  }
  if (facts.proxy) return `cannot reach ${facts.target}${via || ' (the proxy)'} (${why}); check HTTPS_PROXY/HTTP_PROXY and NO_PROXY`;
  if (typeof code === 'string' && UNREACHABLE.has(code)) {
    return `cannot reach ${facts.target} (${why}); if this runner reaches it only through a proxy, set HTTPS_PROXY (and NO_PROXY for the hosts it reaches directly)`;
  }
  return undefined;
}
