/**
 * Everything main.ts needs that loads the AWS SDK. main.ts imports this module only when it first needs it,
 * so the job's first line is printed before the SDK is parsed and evaluated, which then overlaps the hashing
 * of the context on the worker threads (see loadAws in main.ts). scripts/bundle.mjs builds it as a separate
 * part of dist/index.js, carried as a string until then; errors.ts and buildspec.ts are shared with main.
 */
export { watchCancellation } from './follow/cancel';
export { createClients } from './aws/clients';
export { consoleUrl, findBuildByMarker, queueLimitFailure, startBuild, startBuildInput, stopBuild } from './build/codebuild';
export { explainAssumeRoleFailure, resolveCredentials } from './aws/credentials';
export { pushImageIndex } from './registry/image-index';
export { deleteJobToken, putJobToken } from './registry/job-token';
export { failedPhase } from './follow/phases';
export { buildTargets, startBuilds } from './build/start-builds';
export { followBuilds } from './follow/builds';
export { buildRecord, exportedDigest, failedBuild, platformsRecord, reusedRecord } from './report/record';
export { readBuildIds, readStartMarker, writeBuildIds, writeReports, writeStartMarker } from './report/files';
export { inputsTag, reuseUnchanged } from './build/unchanged';
export { uploadContext } from './context/upload';
