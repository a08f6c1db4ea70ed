import type { Logger } from 'pino';
import type { BatchStore, FileRecords } from '@fastvlm/batches';
import type { BlobStore } from '@fastvlm/files';
import type { JobStore } from '@fastvlm/jobs';
import type { GatewayMetrics } from '@fastvlm/observability';
import type { Principal, TenantSettingsStore } from '@fastvlm/security';
import type { GatewayConfig } from '../config';
import type { InferenceService } from '../inference/inference.service';

/** The batch events a tenant's webhooks may subscribe to. */
export type BatchEventType = 'batch.completed' | 'batch.failed' | 'batch.expired' | 'batch.cancelled';

/** Where the end of a batch is announced (the webhooks' emitter): an emit with the same `eventId` twice is sent once. */
export interface BatchEvents {
  emit(input: { tenant: string; type: BatchEventType; objectId: string; eventId: string }): Promise<void>;
}

/** What the steps of a batch's life share. */
export interface BatchContext {
  cfg: GatewayConfig;
  store: BatchStore;
  files: FileRecords;
  blobs: BlobStore;
  jobs: JobStore;
  inference: InferenceService;
  tenants: TenantSettingsStore;
  events: BatchEvents;
  metrics: GatewayMetrics;
  log: Logger;
}

/** The caller a batch's requests run as: the key that created it, with its tenant's settings of now. */
export async function batchPrincipal(ctx: BatchContext, tenant: string, keyId: string): Promise<Principal> {
  const { settings } = await ctx.tenants.get(tenant);
  return { tenant, keyId, scopes: ['infer'], settings };
}

/** Longest input line read: a request with an inline image is at most a request body. */
export function maxLineBytes(cfg: GatewayConfig): number {
  return cfg.BODY_LIMIT_BYTES;
}
