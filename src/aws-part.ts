/**
 * Everything the commands need that loads the AWS SDK, stage by stage. The commands import this module only
 * through `loadAws` (commands/connect.ts), so the job's first line is printed before the SDK is parsed and
 * evaluated, which then overlaps the hashing of the context on the worker threads. scripts/bundle.mjs builds it
 * as a separate part of dist/index.js, carried as strings (one per chunk, compiled when first required) until then; shared/errors.ts and build/buildspec.ts
 * are shared with the rest.
 */
export { uploadContext } from './context/upload';
export { createClients } from './aws/clients';
export { network, proxyLine } from './shared/network';
export { explainAssumeRoleFailure, resolveCredentials } from './aws/credentials';
export { pushImageIndex } from './registry/image-index';
export { deleteJobToken, putJobToken } from './registry/job-token';
export { consoleUrl, findBuildByMarker, queueLimitFailure, stopBuild } from './build/codebuild';
export { buildTargets, startBuilds } from './build/start-builds';
export { inputsTag, reuseUnchanged } from './build/unchanged';
export { followBuilds } from './follow/builds';
export { watchCancellation } from './follow/cancel';
export { failedPhase } from './follow/phases';
export { signImage } from './sign/sign-image';
export { buildRecord, exportedDigest, failedBuild, platformsRecord, reusedRecord } from './report/record';
export { readBuildIds, readStartMarker, writeBuildIds, writeReports, writeStartMarker } from './report/files';
