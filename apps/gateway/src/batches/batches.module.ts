import { Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { RedisKeys } from '@fastvlm/contracts';
import { BatchStore, FileRecords } from '@fastvlm/batches';
import { createBlobStore, type BlobStore } from '@fastvlm/files';
import type { JobStore } from '@fastvlm/jobs';
import type { GatewayMetrics } from '@fastvlm/observability';
import type { TenantSettingsStore } from '@fastvlm/security';
import { CONFIG, type GatewayConfig } from '../config';
import { LOGGER } from '../http/logger';
import { InferenceService } from '../inference/inference.service';
import { JOB_STORE, KEYS, REDIS } from '../infra/tokens';
import { METRICS } from '../metrics/tokens';
import { TENANT_SETTINGS } from '../security/tokens';
import { WEBHOOK_EVENTS } from '../webhooks/tokens';
import type { BatchContext, BatchEvents } from './batch-context';
import { BatchRunner } from './batch-runner';
import { BatchesController } from './batches.controller';
import { FilesController } from './files.controller';
import { BATCH_CONTEXT, BATCH_STORE, BLOB_STORE, FILE_RECORDS } from './tokens';

/** OpenAI's Files and Batch API: file storage, batch records in Redis, and the runner that feeds batches to the pools. */
@Module({
  controllers: [FilesController, BatchesController],
  providers: [
    { provide: BLOB_STORE, inject: [CONFIG], useFactory: (c: GatewayConfig) => createBlobStore(c) },
    { provide: FILE_RECORDS, inject: [REDIS, KEYS], useFactory: (r: Redis, k: RedisKeys) => new FileRecords(r, k) },
    { provide: BATCH_STORE, inject: [REDIS, KEYS], useFactory: (r: Redis, k: RedisKeys) => new BatchStore(r, k) },
    {
      provide: BATCH_CONTEXT,
      inject: [CONFIG, BATCH_STORE, FILE_RECORDS, BLOB_STORE, JOB_STORE, InferenceService, TENANT_SETTINGS, WEBHOOK_EVENTS, METRICS, LOGGER],
      useFactory: (
        cfg: GatewayConfig,
        store: BatchStore,
        files: FileRecords,
        blobs: BlobStore,
        jobs: JobStore,
        inference: InferenceService,
        tenants: TenantSettingsStore,
        events: BatchEvents,
        metrics: GatewayMetrics,
        log: Logger,
      ): BatchContext => ({ cfg, store, files, blobs, jobs, inference, tenants, events, metrics, log }),
    },
    BatchRunner,
  ],
  exports: [BLOB_STORE, BATCH_STORE, FILE_RECORDS],
})
export class BatchesModule implements OnApplicationShutdown {
  constructor(@Inject(BLOB_STORE) private readonly blobs: BlobStore) {}

  onApplicationShutdown(): void {
    const closable = this.blobs as BlobStore & { close?: () => void };
    closable.close?.();
  }
}
