/**
 * A Redis Cluster of primaries on loopback. The harness lives with the
 * library tests, which may not import from test/; the system tests use the same one.
 */
export { RedisClusterGroup } from '../../libs/jobs/src/test-redis-cluster';
