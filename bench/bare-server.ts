/**
 * The baseline of bench:gateway: a bare Fastify server whose POST /v1/jobs
 * only parses the JSON body and calls queue.add, on the same Redis and queue
 * options as the gateway. Everything the gateway does beyond this
 * (authentication, limits, validation, cache lookup, job records) is what the
 * benchmark prices.
 *
 * With a third argument N, each request first runs N trivial Lua scripts one
 * after another (an INCR each): a reference for what N Redis round trips
 * cost by themselves, with none of the gateway's other work.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Queue } from 'bullmq';
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import { poolQueue } from '@fastvlm/contracts';

const port = Number(process.argv[2]);
const prefix = process.argv[3] ?? 'bench-bare';
const roundTrips = Number(process.argv[4] ?? 0);
const INCR = "return redis.call('INCR', KEYS[1])";
const INCR_SHA = createHash('sha1').update(INCR).digest('hex');
// By SHA as the gateway's scripts run; the first call loads it.
const trip = (key: string): Promise<unknown> => redis.evalsha(INCR_SHA, 1, key).catch(() => redis.eval(INCR, 1, key));
const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: 1, enableOfflineQueue: false });
// The queue name the gateway would use for the bench's model (tiny-random).
const queue = new Queue(poolQueue('tiny-random'), {
  connection: redis,
  prefix: `${prefix}:bull`,
  defaultJobOptions: { attempts: 3, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: { age: 3600, count: 10_000 }, removeOnFail: { age: 7 * 86_400 } },
});
const app = Fastify({ bodyLimit: 20 * 1024 * 1024, logger: false });

app.post('/v1/jobs', async (req, reply) => {
  const id = `job_${randomBytes(16).toString('base64url')}`;
  for (let i = 0; i < roundTrips; i++) await trip(`${prefix}:trip:${i}`);
  await queue.add('chat', { id, body: req.body }, { jobId: id });
  return reply.code(202).send({ id, object: 'job', status: 'queued' });
});

await app.listen({ port, host: '127.0.0.1' });
process.stdout.write('bare server listening\n');
process.on('SIGTERM', () => {
  void app.close().then(() => queue.close()).then(() => process.exit(0));
});
