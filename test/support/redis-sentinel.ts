/**
 * A Sentinel-watched Redis (primary, replica, three Sentinels) on loopback.
 * The harness lives with the library tests, which may not import from test/;
 * the system tests use the same one.
 */
export { RedisSentinelGroup, type SentinelGroupOptions } from '../../libs/jobs/src/test-redis-sentinel';
