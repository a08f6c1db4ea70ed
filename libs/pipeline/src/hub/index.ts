export { pullModel, type HubOptions, type PullResult } from './pull';
export { hubCacheDir, missingFiles, parseHubRef, requiredFiles, type HubRef } from './files';
export { DEFAULT_ENDPOINT } from './http';
export type { ProgressMode } from './progress';
