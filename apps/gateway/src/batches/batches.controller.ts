import { Body, Controller, Get, HttpCode, Inject, Param, Post, Query, UseGuards } from '@nestjs/common';
import { z } from 'zod';
import { AppError } from '@fastvlm/contracts';
import { isBatchId, isFileId, newBatchId, type BatchRecord, type BatchStore, type FileRecords } from '@fastvlm/batches';
import type { Principal } from '@fastvlm/security';
import { CONFIG, type GatewayConfig } from '../config';
import { ApiKeyGuard, Caller } from '../http/auth.guard';
import { RequireScope } from '../security/require-scope';
import { BatchRunner } from './batch-runner';
import { toBatchView, type BatchView } from './batch-view';
import { parseWindows } from './completion-window';
import { listView, pageLimit } from './file-view';
import { BATCH_STORE, FILE_RECORDS } from './tokens';

/** The one endpoint batches run (FastVLM answers chat completions). */
export const BATCH_ENDPOINT = '/v1/chat/completions';

const CreateBatch = z.strictObject({
  input_file_id: z.string(),
  endpoint: z.string(),
  completion_window: z.string(),
  // OpenAI's bounds: 16 pairs, keys up to 64 characters, values up to 512.
  metadata: z.record(z.string().max(64), z.string().max(512)).refine((m) => Object.keys(m).length <= 16, 'at most 16 pairs').nullish(),
});

/** `/v1/batches`: OpenAI's Batch API over the work classes' `batch` class. Per tenant. */
@Controller('v1/batches')
@UseGuards(ApiKeyGuard)
export class BatchesController {
  private readonly windows: Map<string, number>;
  /** How long a batch's record may live: its longest window, then BATCH_TTL_S after it ended. */
  private readonly keepMs: number;

  constructor(
    @Inject(CONFIG) cfg: GatewayConfig,
    @Inject(BATCH_STORE) private readonly batches: BatchStore,
    @Inject(FILE_RECORDS) private readonly files: FileRecords,
    @Inject(BatchRunner) private readonly runner: BatchRunner,
  ) {
    this.windows = parseWindows(cfg.BATCH_COMPLETION_WINDOWS);
    this.keepMs = Math.max(...this.windows.values()) + cfg.BATCH_TTL_S * 1000;
  }

  @Post()
  @RequireScope('infer')
  @HttpCode(200)
  async create(@Caller() caller: Principal, @Body() body: unknown): Promise<BatchView> {
    const parsed = CreateBatch.safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const param = issue?.path.join('.') || null;
      throw new AppError('invalid_request', `Invalid request body: ${param ? `${param}: ` : ''}${issue?.message ?? 'malformed'}`, param ?? undefined);
    }
    const b = parsed.data;
    if (b.endpoint !== BATCH_ENDPOINT) throw new AppError('invalid_request', `endpoint must be "${BATCH_ENDPOINT}".`, 'endpoint');
    const windowMs = this.windows.get(b.completion_window);
    if (windowMs === undefined) {
      throw new AppError('invalid_request', `completion_window must be one of ${[...this.windows.keys()].map((w) => `"${w}"`).join(', ')}.`, 'completion_window');
    }
    const file = isFileId(b.input_file_id) ? await this.files.get(b.input_file_id) : null;
    if (!file || file.tenant !== caller.tenant) throw new AppError('not_found', `No file with id ${b.input_file_id}.`, 'input_file_id');
    if (file.purpose !== 'batch') throw new AppError('invalid_request', `File ${file.id} was not uploaded with purpose "batch".`, 'input_file_id');
    const now = Date.now();
    const id = newBatchId();
    await this.batches.create({
      id,
      tenant: caller.tenant,
      keyId: caller.keyId,
      endpoint: b.endpoint,
      inputFileId: file.id,
      completionWindow: b.completion_window,
      createdAt: now,
      expiresAt: now + windowMs,
      metadata: b.metadata ?? null,
    }, this.keepMs);
    this.runner.kick();
    return toBatchView(await this.owned(id, caller));
  }

  @Get()
  @RequireScope('jobs:read')
  async list(@Caller() caller: Principal, @Query('after') after?: string, @Query('limit') limit?: string): Promise<ReturnType<typeof listView<BatchView>>> {
    let n: number;
    try {
      n = pageLimit(limit, 100);
    } catch (e) {
      throw new AppError('invalid_request', (e as Error).message, 'limit');
    }
    const page = await this.batches.list(caller.tenant, after, n);
    return listView(page.data.map(toBatchView), page.hasMore);
  }

  @Get(':id')
  @RequireScope('jobs:read')
  async get(@Caller() caller: Principal, @Param('id') id: string): Promise<BatchView> {
    return toBatchView(await this.owned(id, caller));
  }

  /** Stops feeding, cancels the requests in flight, and ends `cancelled` with the lines done so far (the runner finishes it). */
  @Post(':id/cancel')
  @RequireScope('infer')
  @HttpCode(200)
  async cancel(@Caller() caller: Principal, @Param('id') id: string): Promise<BatchView> {
    const b = await this.owned(id, caller);
    if (b.status !== 'cancelling' && !(await this.batches.transition(id, ['validating', 'in_progress'], 'cancelling', Date.now()))) {
      const now = await this.owned(id, caller);
      if (now.status !== 'cancelling') throw new AppError('conflict', `Cannot cancel a batch with status ${now.status}.`, 'id');
    }
    this.runner.kick();
    return toBatchView(await this.owned(id, caller));
  }

  private async owned(id: string, caller: Principal): Promise<BatchRecord> {
    const b = isBatchId(id) ? await this.batches.get(id) : null;
    if (!b || b.tenant !== caller.tenant) throw new AppError('not_found', `No batch with id ${id}.`, 'id');
    return b;
  }
}
