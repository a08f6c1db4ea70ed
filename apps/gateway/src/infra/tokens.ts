/** Injection tokens: explicit, because the build does not emit decorator metadata. */
export const REDIS = Symbol('Redis');
export const CACHE_REDIS = Symbol('CacheRedis');
export const SUB_REDIS = Symbol('SubscriberRedis');
export const KEYS = Symbol('RedisKeys');
export const JOB_STORE = Symbol('JobStore');
export const IMAGE_STORE = Symbol('ImageStore');
export const ANSWER_CACHE = Symbol('AnswerCache');
export const EVENT_HUB = Symbol('EventHub');
export const IDEMPOTENCY = Symbol('IdempotencyKeys');
export const REGISTRY = Symbol('WorkerRegistry');
/** The model pools (`Pools`): each model's queue and its arrival counter for the autoscaler. */
export const POOLS = Symbol('Pools');
