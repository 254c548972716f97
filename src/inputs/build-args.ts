// Build args: build_args (KEY=VALUE) and secret_build_args (KEY=ssm:… or KEY=secretsmanager:…, never echoed).
import { SECRET_REFERENCE } from './aws-names';
import { atMost, AwsLimits, formatCount, JobLimits } from './limits';
import { Inputs, VARIABLE_NAME } from './names';
import { type Problems, readList } from './problems';
import type { BuildArg, SecretBuildArg } from './settings';
import { shown } from '../shared/shown';

export function readBuildArgs(p: Problems, raw: string): BuildArg[] {
  const args: BuildArg[] = [];
  for (const [i, item] of (readList(p, Inputs.BuildArgs, raw) ?? []).entries()) {
    const eq = item.indexOf('=');
    const name = eq < 0 ? item : item.slice(0, eq);
    const value = eq < 0 ? '' : item.slice(eq + 1);
    if (eq < 0 || !VARIABLE_NAME.test(name)) p.add(Inputs.BuildArgs, `item ${i + 1} ${shown(item)} is not KEY=VALUE with KEY made of letters, digits and _`);
    else if (name.length > JobLimits.variableName) p.add(Inputs.BuildArgs, nameTooLong(name));
    else if (/[\r\n\0]/.test(value)) p.add(Inputs.BuildArgs, `the value of ${name} contains a line break or NUL; pass multi-line data in a file of the context`);
    else if (value.length > AwsLimits.variableValue.max) {
      // The value is never printed: only its length.
      p.add(Inputs.BuildArgs, `the value of ${name} is ${formatCount(value.length)} characters; AWS takes ${atMost(AwsLimits.variableValue)}: pass it as a secret build arg (secret_build_args, from Secrets Manager or Parameter Store), or in a file of the context`);
    } else args.push({ name, value });
  }
  return args;
}

export function readSecretBuildArgs(p: Problems, raw: string): SecretBuildArg[] {
  const args: SecretBuildArg[] = [];
  const usage = 'KEY=secretsmanager:<secret-id[:json-key[:stage[:version]]]> or KEY=ssm:<parameter-name>';
  const neverAValue =
    'if that is a secret value, remove it now: a secret never belongs in an input (pipeline configuration and job logs keep it). ' +
    'Store it in Parameter Store (aws ssm put-parameter --type SecureString --name /ci/KEY --value …) or Secrets Manager ' +
    '(aws secretsmanager create-secret --name ci/KEY --secret-string …), give the job\'s role read access, and write KEY=ssm:/ci/KEY or KEY=secretsmanager:ci/KEY';
  // Items are never echoed: a user may have pasted a secret value instead of a reference.
  for (const [i, item] of (readList(p, Inputs.SecretBuildArgs, raw) ?? []).entries()) {
    const eq = item.indexOf('=');
    const name = item.slice(0, Math.max(eq, 0));
    const value = item.slice(eq + 1);
    const source = /^(secretsmanager|ssm):(.*)$/.exec(value);
    if (eq < 0 || !VARIABLE_NAME.test(name)) p.add(Inputs.SecretBuildArgs, `item ${i + 1} is not ${usage}; ${neverAValue}`);
    else if (!source) p.add(Inputs.SecretBuildArgs, `${name} must be ${usage}; ${neverAValue}`);
    else if (name.length > JobLimits.variableName) p.add(Inputs.SecretBuildArgs, nameTooLong(name));
    else if (!SECRET_REFERENCE.test(source[2] ?? '')) p.add(Inputs.SecretBuildArgs, `${name}: the reference after ${source[1]}: must be a non-empty secret id or parameter name without spaces`);
    else if ((source[2] ?? '').length > AwsLimits.variableValue.max) {
      p.add(Inputs.SecretBuildArgs, `${name}: the reference is ${formatCount(source[2]?.length ?? 0)} characters; AWS takes ${atMost(AwsLimits.variableValue)}: give a shorter secret id or parameter name`);
    } else args.push({ name, type: source[1] === 'ssm' ? 'PARAMETER_STORE' : 'SECRETS_MANAGER', reference: source[2] ?? '' });
  }
  return args;
}

function nameTooLong(name: string): string {
  return `${shown(name)} is a build arg name of ${name.length} characters; the job takes at most ${JobLimits.variableName} (the names travel together in one CodeBuild variable)`;
}
