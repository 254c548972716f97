import { AwsError } from '../protocol';
import { loadModel, shapeOf, type Operation, type ServiceModel, type Shape } from './model';
import { fromQuery, fromXml } from './query';
import type { ServiceInfo } from './services';
import { describe, validate, validationMessage, type Problem } from './validate';

/** Something the fake received or sent that AWS's model of the operation does not allow. */
export interface Violation {
  /** input: a request broke the model; output: an answer did; error: an error the operation does not list. */
  kind: 'input' | 'output' | 'error';
  service: string;
  operation: string;
  path: string;
  message: string;
}

/** Errors any operation may answer besides those its model lists: AWS's common errors and the authorisation ones. */
const COMMON_ERRORS = new Set([
  'AccessDenied', 'AccessDeniedException', 'ExpiredTokenException', 'IncompleteSignature', 'IncompleteSignatureException',
  'InternalFailure', 'InvalidAction', 'InvalidClientTokenId', 'InvalidParameterCombination', 'InvalidParameterValue',
  'InvalidSignatureException', 'MalformedQueryString', 'MissingAction', 'MissingAuthenticationToken',
  'MissingAuthenticationTokenException', 'MissingParameter', 'NotAuthorized', 'OptInRequired', 'RequestExpired',
  'SerializationException', 'ServiceUnavailable', 'ServiceUnavailableException', 'Throttling', 'ThrottlingException',
  'UnknownOperationException', 'UnrecognizedClientException', 'ValidationError', 'ValidationException',
]);

/**
 * Errors AWS documents for an operation that its model does not list. CodeBuild: "If you repeat the StartBuild
 * request with the same token, but change a parameter, CodeBuild returns a parameter mismatch error" (StartBuild's
 * idempotencyToken); the SDK surfaces it by name.
 */
const UNMODELLED_ERRORS: Record<string, readonly string[]> = {
  'codebuild:StartBuild': ['IdempotentParameterMismatchException'],
};

/**
 * Holds every request and answer of the fake to AWS's model of its operation, and keeps what breaks it (in memory,
 * for /_fake/violations) so that a test fails.
 */
export class ModelChecks {
  private readonly recorded: Violation[] = [];

  violations(): Violation[] {
    return [...this.recorded];
  }

  /**
   * Checks a request (a JSON body, or the Query protocol's parameters) against the operation's input shape. Returns
   * the error AWS answers it with, or undefined when it may proceed: valid, or with unknown members only, which AWS
   * ignores (they are still recorded).
   */
  request(service: ServiceInfo, operation: string, input: Record<string, unknown> | URLSearchParams): AwsError | undefined {
    const served = service.served;
    if (served.protocol === 'none') throw new Error(`the fake does not serve ${service.name}: ${served.why}`);
    const found = this.find(service, operation);
    if (!found) {
      this.add('input', service, operation, '', `${operation} is not an operation of ${service.name} ${service.version}`);
      return undefined;
    }
    const { model, op } = found;
    if (!op.input) return undefined;
    let problems: Problem[];
    if (input instanceof URLSearchParams) {
      const { value, unknown } = fromQuery(model, op.input.shape, input);
      const strays = unknown.map((k): Problem => ({ path: k, kind: 'unknown', rule: `${k} is not a parameter of ${op.name}`, value: undefined, sensitive: false }));
      problems = [...validate(model, op.input.shape, value, 'input'), ...strays];
    } else {
      problems = validate(model, op.input.shape, input, 'input');
    }
    for (const p of problems) this.add('input', service, operation, p.path, describe(p));

    const types = problems.filter((p) => p.kind === 'type');
    const broken = problems.filter((p) => p.kind !== 'unknown');
    // A JSON service reads the body before it validates it: a value of the wrong type stops it there.
    if (served.protocol === 'json' && types[0]) return new AwsError('SerializationException', describe(types[0]));
    return broken.length > 0 ? new AwsError(served.validationError, validationMessage(broken)) : undefined;
  }

  /** Checks a JSON answer against the operation's output shape. */
  response(service: ServiceInfo, operation: string, body: unknown): void {
    const found = this.find(service, operation);
    if (!found?.op.output) return;
    this.output(service, operation, validate(found.model, found.op.output.shape, body, 'output'));
  }

  /** Checks a Query-protocol (XML) answer against the operation's output shape, as the SDK reads it. */
  async xmlResponse(service: ServiceInfo, operation: string, xml: string): Promise<void> {
    const found = this.find(service, operation);
    const output = found?.op.output;
    if (!found || !output) return;
    const value = await fromXml(found.model, output.shape, output.resultWrapper, xml);
    if (value === undefined) this.add('output', service, operation, '', `the answer has no ${output.resultWrapper ?? 'result'} element`);
    else this.output(service, operation, validate(found.model, output.shape, value, 'output'));
  }

  /**
   * A checker for the messages of a streamed answer (StartLiveTail's event stream): each event against its shape
   * in the output's event-stream union, each exception against the union's exceptions. The answer's other members
   * (its initial response) are checked here, against `initial`.
   */
  stream(service: ServiceInfo, operation: string, initial: Record<string, unknown> = {}): (kind: 'event' | 'exception', type: string, body: unknown) => void {
    this.response(service, operation, initial);
    const found = this.find(service, operation);
    const union = found && eventUnion(found.model, found.op);
    return (kind, type, body) => {
      const ref = union?.members[type];
      const shape = found && ref ? shapeOf(found.model, ref.shape) : undefined;
      if (!found || !ref || shape?.type !== 'structure' || !(kind === 'event' ? shape.event : shape.exception)) {
        return this.add('output', service, operation, type, `${type} is not an ${kind} of ${operation}'s event stream`);
      }
      this.output(service, operation, validate(found.model, ref.shape, body, 'output').map((p) => ({ ...p, path: p.path ? `${type}.${p.path}` : type })));
    };
  }

  /** Checks that an error the fake answers is one the operation lists, or a common one. */
  error(service: ServiceInfo, operation: string, code: string): void {
    const found = this.find(service, operation);
    if (!found || COMMON_ERRORS.has(code) || UNMODELLED_ERRORS[`${service.name}:${operation}`]?.includes(code)) return;
    const served = service.served;
    if (served.protocol !== 'none' && code === served.validationError) return;
    const listed = (found.op.errors ?? []).flatMap((ref) => {
      const shape = shapeOf(found.model, ref.shape);
      return [ref.shape, ...(shape.type === 'structure' && shape.error?.code ? [shape.error.code] : [])];
    });
    if (!listed.includes(code)) {
      this.add('error', service, operation, '', `${code} is neither an error ${operation} lists (${listed.join(', ') || 'none'}) nor a common AWS error`);
    }
  }

  private output(service: ServiceInfo, operation: string, problems: Problem[]): void {
    for (const p of problems) this.add('output', service, operation, p.path, describe(p));
  }

  private find(service: ServiceInfo, operation: string): { model: ServiceModel; op: Operation } | undefined {
    const model = loadModel(service);
    const op = model.operations[operation];
    return op ? { model, op } : undefined;
  }

  private add(kind: Violation['kind'], service: ServiceInfo, operation: string, path: string, message: string): void {
    this.recorded.push({ kind, service: service.name, operation, path, message });
  }
}

type StructureShape = Extract<Shape, { type: 'structure' }>;

/** The union of events an operation streams, if it does. */
function eventUnion(model: ServiceModel, op: Operation): StructureShape | undefined {
  const output = op.output && shapeOf(model, op.output.shape);
  if (output?.type !== 'structure') return undefined;
  return Object.values(output.members)
    .map((ref) => shapeOf(model, ref.shape))
    .find((s): s is StructureShape => s.type === 'structure' && s.eventstream === true);
}
