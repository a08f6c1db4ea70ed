import { Module } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { RedisKeys } from '@fastvlm/contracts';
import { UsageStore } from '@fastvlm/jobs';
import { KEYS, REDIS } from '../infra/tokens';
import { USAGE_STORE } from './tokens';
import { AdminUsageController, UsageController } from './usage.controller';
import { UsageService } from './usage.service';

/**
 * Usage metering's read side: workers write each finished job's usage into
 * the queue Redis (libs/jobs UsageStore); these routes sum it. On the
 * fail-fast connection: with Redis away they answer 503 at once.
 */
@Module({
  controllers: [UsageController, AdminUsageController],
  providers: [{ provide: USAGE_STORE, inject: [REDIS, KEYS], useFactory: (r: Redis, k: RedisKeys) => new UsageStore(r, k) }, UsageService],
})
export class UsageModule {}
