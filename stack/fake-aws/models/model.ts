import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SERVICES, type ServiceInfo } from './services';

/** A reference from a structure member, list, or map to a shape, with the member's own traits. */
export interface ShapeRef {
  shape: string;
  locationName?: string;
  flattened?: boolean;
}

interface Traits {
  min?: number;
  max?: number;
  sensitive?: boolean;
}

/** The parts of botocore's shape format the checks read. */
export type Shape =
  | (Traits & {
      type: 'structure';
      members: Record<string, ShapeRef>;
      required?: string[];
      union?: boolean;
      document?: boolean;
      /** A union of events: a streamed output (StartLiveTail's). */
      eventstream?: boolean;
      event?: boolean;
      exception?: boolean;
      /** Query protocol: the error code, when it is not the shape's name. */
      error?: { code?: string };
    })
  | (Traits & { type: 'list'; member: ShapeRef; flattened?: boolean })
  | (Traits & { type: 'map'; key: ShapeRef; value: ShapeRef; flattened?: boolean })
  | (Traits & { type: 'string'; pattern?: string; enum?: string[] })
  | (Traits & { type: 'integer' | 'long' | 'float' | 'double' | 'boolean' | 'blob' })
  | (Traits & { type: 'timestamp'; timestampFormat?: string });

export interface Operation {
  name: string;
  input?: ShapeRef;
  output?: ShapeRef & { resultWrapper?: string };
  errors?: ShapeRef[];
}

export interface ServiceModel {
  metadata: { protocol: string; targetPrefix?: string; apiVersion: string };
  operations: Record<string, Operation>;
  shapes: Record<string, Shape>;
}

export const DEFAULT_MODELS_DIR = '/opt/codebuild-image/botocore';

export function modelsDir(): string {
  return process.env['CBI_MODELS_DIR'] || DEFAULT_MODELS_DIR;
}

export function modelFile(service: ServiceInfo): string {
  return join(modelsDir(), 'data', service.name, service.version, 'service-2.json');
}

function missing(service: ServiceInfo, file: string): Error {
  return new Error(
    `AWS's model of ${service.name} ${service.version} is missing at ${file}: run \`bash scripts/ensure-deps.sh\` ` +
      '(it unpacks python3-botocore there), or set CBI_MODELS_DIR to a directory holding data/<service>/<version>/service-2.json',
  );
}

/** Fails at start, not at the first request, when a model of a service the fake serves is absent. */
export function assertModels(): void {
  for (const service of SERVICES) {
    if (service.served.protocol !== 'none' && !existsSync(modelFile(service))) throw missing(service, modelFile(service));
  }
}

const loaded = new Map<string, ServiceModel>();

/** The service's model, read on first use. */
export function loadModel(service: ServiceInfo): ServiceModel {
  const file = modelFile(service);
  let model = loaded.get(file);
  if (!model) {
    if (!existsSync(file)) throw missing(service, file);
    model = JSON.parse(readFileSync(file, 'utf8')) as ServiceModel;
    loaded.set(file, model);
  }
  return model;
}

/** The shape a reference names; a model that names a shape it lacks is broken, not the request. */
export function shapeOf(model: ServiceModel, name: string): Shape {
  const shape = model.shapes[name];
  if (!shape) throw new Error(`the model has no shape ${name} (${model.metadata.apiVersion})`);
  return shape;
}
