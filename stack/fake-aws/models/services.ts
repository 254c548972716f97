/**
 * The AWS services the program calls, with the version of AWS's model each is checked against and how the fake
 * serves it. The models are botocore's (`<CBI_MODELS_DIR>/data/<name>/<version>/service-2.json`), from the Debian
 * package that scripts/ensure-deps.sh pins.
 */
export interface ServiceInfo {
  /** botocore's name for the service (its directory under data/). */
  name: string;
  /** The API version, a directory under data/<name>/. */
  version: string;
  /** The AWS SDK v3 package of the service's client: the program's commands are mapped to services through it. */
  sdkPackage: string;
  /** How the fake serves it: JSON 1.1 under an X-Amz-Target prefix, the Query protocol, or not at all. */
  served:
    | { protocol: 'json'; targetPrefix: string; validationError: string }
    | { protocol: 'query'; validationError: string }
    | { protocol: 'none'; why: string };
}

/*
 * validationError: the error each service answers a request that breaks its model with (AWS's Coral framework
 * words the message alike everywhere, the name differs): CloudWatch Logs InvalidParameterException, SSM, Secrets
 * Manager and KMS ValidationException, STS (Query) ValidationError, each as seen in their public error reports;
 * CodeBuild InvalidInputException, the only client-input error its model declares.
 */
export const SERVICES: readonly ServiceInfo[] = [
  { name: 'codebuild', version: '2016-10-06', sdkPackage: '@aws-sdk/client-codebuild', served: { protocol: 'json', targetPrefix: 'CodeBuild_20161006.', validationError: 'InvalidInputException' } },
  { name: 'logs', version: '2014-03-28', sdkPackage: '@aws-sdk/client-cloudwatch-logs', served: { protocol: 'json', targetPrefix: 'Logs_20140328.', validationError: 'InvalidParameterException' } },
  { name: 'ssm', version: '2014-11-06', sdkPackage: '@aws-sdk/client-ssm', served: { protocol: 'json', targetPrefix: 'AmazonSSM.', validationError: 'ValidationException' } },
  { name: 'secretsmanager', version: '2017-10-17', sdkPackage: '@aws-sdk/client-secrets-manager', served: { protocol: 'json', targetPrefix: 'secretsmanager.', validationError: 'ValidationException' } },
  { name: 'kms', version: '2014-11-01', sdkPackage: '@aws-sdk/client-kms', served: { protocol: 'json', targetPrefix: 'TrentService.', validationError: 'ValidationException' } },
  { name: 'sts', version: '2011-06-15', sdkPackage: '@aws-sdk/client-sts', served: { protocol: 'query', validationError: 'ValidationError' } },
  { name: 's3', version: '2006-03-01', sdkPackage: '@aws-sdk/client-s3', served: { protocol: 'none', why: 'the stack serves S3 with s3rver' } },
  { name: 'ecr', version: '2015-09-21', sdkPackage: '@aws-sdk/client-ecr', served: { protocol: 'none', why: 'the stack has no ECR, only Debian\'s docker-registry' } },
];

/** The service a JSON 1.1 request's X-Amz-Target names, or undefined. */
export function serviceForTarget(target: string): ServiceInfo | undefined {
  return SERVICES.find((s) => s.served.protocol === 'json' && target.startsWith(s.served.targetPrefix));
}

/** The one service the fake serves over the Query protocol (`Action=...` form posts). */
export function queryService(): ServiceInfo {
  const sts = SERVICES.find((s) => s.served.protocol === 'query');
  if (!sts) throw new Error('no Query-protocol service in stack/fake-aws/models/services.ts');
  return sts;
}

export function serviceByName(name: string): ServiceInfo {
  const service = SERVICES.find((s) => s.name === name);
  if (!service) throw new Error(`no service ${name} in stack/fake-aws/models/services.ts`);
  return service;
}
