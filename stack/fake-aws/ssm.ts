import { AwsError } from './protocol';

/**
 * Parameter Store's PutParameter, GetParameter and DeleteParameter (JSON 1.1, target `AmazonSSM.<op>`) over the
 * same values CodeBuild resolves PARAMETER_STORE variables from, so a parameter a job writes is one its build
 * reads. Enough for short-lived SecureStrings (e.g. a job token passed by reference); types are not kept.
 */
export function handleSsm(parameters: Record<string, string>, operation: string, body: Record<string, unknown>): Record<string, unknown> {
  if (!['PutParameter', 'GetParameter', 'DeleteParameter'].includes(operation)) {
    throw new AwsError('UnknownOperationException', `Operation ${operation} is not supported by the fake Parameter Store (PutParameter, GetParameter, DeleteParameter).`);
  }
  const name = typeof body.Name === 'string' ? body.Name : '';
  if (!name) throw new AwsError('ValidationException', '1 validation error detected: Value null at \'name\' failed to satisfy constraint: Member must not be null');
  const exists = Object.hasOwn(parameters, name);
  switch (operation) {
    case 'PutParameter': {
      if (typeof body.Value !== 'string' || body.Value === '') throw new AwsError('ValidationException', "1 validation error detected: Value at 'value' failed to satisfy constraint: Member must have length greater than or equal to 1");
      if (exists && body.Overwrite !== true) throw new AwsError('ParameterAlreadyExists', 'The parameter already exists. To overwrite this value, set the overwrite option in the request to true.');
      parameters[name] = body.Value;
      return { Version: 1, Tier: 'Standard' };
    }
    case 'GetParameter':
      if (!exists) throw new AwsError('ParameterNotFound', '');
      return { Parameter: { Name: name, Type: 'SecureString', Value: body.WithDecryption === true ? parameters[name] : '(encrypted)', Version: 1 } };
    default: // DeleteParameter
      if (!exists) throw new AwsError('ParameterNotFound', '');
      delete parameters[name];
      return {};
  }
}
