import { Controller, Delete, Get, HttpCode, Inject, Param, Post, Req, Res, UseGuards } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '@fastvlm/contracts';
import {
  IdempotencyInProgress,
  compareStreamIds,
  isStreamId,
  newJobId,
  sha256Hex,
  type IdempotencyClaim,
  type IdempotencyKeys,
  type JobRecord,
  type JobStore,
} from '@fastvlm/jobs';
import type { Principal } from '@fastvlm/security';
import { completionId, toChatCompletion } from '../chat/completion';
import { lowPriorityHeader, parseChatBody, type ChatRequest } from '../chat/openai-request';
import { ApiKeyGuard, Caller } from '../http/auth.guard';
import { toHttpError } from '../http/errors';
import { SseWriter } from '../http/sse';
import { IDEMPOTENCY, JOB_STORE } from '../infra/tokens';
import { InferenceService } from '../inference/inference.service';
import type { Admitted } from '../intake/request-gate';
import { RequireScope } from '../security/require-scope';
import { toJobView, type JobView } from './job-view';
import { JobWatcher } from '../webhooks/job-watcher';
import { readMultipartJob } from './multipart';

const REPLAY_WAIT_MS = 2_000;

@Controller('v1/jobs')
@UseGuards(ApiKeyGuard)
export class JobsController {
  constructor(
    @Inject(InferenceService) private readonly inference: InferenceService,
    @Inject(JOB_STORE) private readonly store: JobStore,
    @Inject(IDEMPOTENCY) private readonly idempotency: IdempotencyKeys,
    @Inject(JobWatcher) private readonly webhookJobs: JobWatcher,
  ) {}

  @Post()
  @RequireScope('infer')
  @HttpCode(202)
  async create(@Caller() caller: Principal, @Req() req: FastifyRequest, @Res({ passthrough: true }) reply: FastifyReply): Promise<JobView> {
    const parsed: ChatRequest = req.isMultipart() ? await readMultipartJob(req) : parseChatBody(req.body);
    const input: ChatRequest = { ...parsed, lowPriority: parsed.lowPriority || lowPriorityHeader(header(req, 'x-priority')) };
    if (input.stream) throw new AppError('invalid_request', 'Jobs do not stream in the response; follow GET /v1/jobs/{id}/events.', 'stream');
    const idemKey = header(req, 'idempotency-key');
    let jobId = newJobId();
    let claim: IdempotencyClaim | null = null;
    if (idemKey !== undefined) {
      const claimed = await this.claim(caller, idemKey, input, jobId, reply);
      if (claimed.replay) {
        void reply.header('location', `/v1/jobs/${claimed.jobId}`).header('idempotent-replayed', 'true');
        return toJobView(await this.awaitRecord(claimed.jobId, caller));
      }
      claim = claimed.claim;
      jobId = claim.jobId;
    }
    let outcome: Admitted;
    try {
      outcome = await this.inference.submit(caller, input, 'async', jobId);
    } catch (e) {
      if (claim) await this.idempotency.release(claim).catch(() => undefined);
      throw e;
    }
    // The record exists: the key names it from now on. If this write fails the claim lapses
    // with its pending TTL, and a retry makes a second job: rare, and never a key naming no job.
    if (claim) await this.idempotency.confirm(claim).catch(() => undefined);
    // Webhooks announce its end (a cached answer ended already); never fails the request.
    await this.webhookJobs.watch(caller.tenant, jobId, outcome.kind === 'cached');
    void reply.header('location', `/v1/jobs/${jobId}`).header('x-cache', outcome.kind === 'cached' ? `hit-${outcome.level}` : 'miss');
    // The record as this request created it; no need to read it back.
    const accepted: JobRecord = { id: jobId, tenant: caller.tenant, model: outcome.model, createdAt: outcome.createdAt, status: 'queued' };
    return toJobView(outcome.kind === 'cached' ? { ...accepted, status: 'succeeded', finishedAt: outcome.result.finishedAt, result: outcome.result } : accepted);
  }

  @Get(':id')
  @RequireScope('jobs:read')
  async get(@Caller() caller: Principal, @Param('id') id: string): Promise<JobView> {
    return toJobView(await this.owned(id, caller));
  }

  @Delete(':id')
  @RequireScope('infer')
  async cancel(@Caller() caller: Principal, @Param('id') id: string): Promise<JobView> {
    await this.owned(id, caller);
    // Finished jobs keep their status: cancelling them is a no-op, not an error.
    await this.inference.cancel(id);
    return toJobView(await this.owned(id, caller));
  }

  /**
   * SSE of the job's status changes and tokens, resumable with Last-Event-ID.
   * Each token index is sent once: a re-run after a worker crash repeats the
   * indices the first run already wrote, and those repeats are dropped here.
   * On resume the stream is re-read from its start, silently up to the
   * client's last id, so the dropping continues exactly where it stopped.
   */
  @Get(':id/events')
  @RequireScope('jobs:read')
  async events(@Caller() caller: Principal, @Param('id') id: string, @Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    await this.owned(id, caller);
    const last = header(req, 'last-event-id') ?? '0';
    if (last !== '0' && !isStreamId(last)) throw new AppError('invalid_request', 'Last-Event-ID is not an event id of this stream.', 'Last-Event-ID');
    const sse = new SseWriter(reply, { keepAliveMs: this.inference.keepAliveMs });
    let next = 0;
    try {
      for await (const { id: entryId, event } of this.inference.follow(id, '0', sse.aborted)) {
        if (event.type === 'token') {
          if (event.index < next) continue;
          next = event.index + 1;
        }
        // Already sent on an earlier connection.
        if (compareStreamIds(entryId, last) <= 0) continue;
        switch (event.type) {
          case 'status':
            sse.send({ status: event.status }, { id: entryId, event: 'status' });
            break;
          case 'token':
            sse.send({ index: event.index, text: event.text, ...(event.attempt !== undefined ? { attempt: event.attempt } : {}) }, { id: entryId, event: 'token' });
            break;
          case 'done':
            sse.send(toChatCompletion(completionId(id), event.result), { id: entryId, event: 'done' });
            break;
          case 'error':
            sse.send({ error: event.error }, { id: entryId, event: 'error' });
            break;
        }
      }
    } catch (e) {
      sse.send(toHttpError(e).body, { event: 'error' });
    }
    sse.end();
  }

  /** The job if it exists and belongs to the caller's tenant; 404 otherwise, never 403 (ids of others stay unconfirmed). */
  private async owned(id: string, caller: Principal): Promise<JobRecord> {
    const rec = /^job_[A-Za-z0-9_-]{10,40}$/.test(id) ? await this.store.get(id) : null;
    if (!rec || rec.tenant !== caller.tenant) throw new AppError('not_found', `No job with id ${id}.`, 'id');
    return rec;
  }

  /** Claims the Idempotency-Key; a replay of a request still being admitted is told when to retry. */
  private async claim(caller: Principal, key: string, input: ChatRequest, jobId: string, reply: FastifyReply): ReturnType<IdempotencyKeys['claim']> {
    try {
      return await this.idempotency.claim(caller.tenant, key, requestHash(input), jobId);
    } catch (e) {
      if (e instanceof IdempotencyInProgress) void reply.header('retry-after', String(Math.ceil(e.retryAfterMs / 1000)));
      throw e;
    }
  }

  /** A claim written before claims were two-phase may name a record not written yet. */
  private async awaitRecord(id: string, caller: Principal): Promise<JobRecord> {
    const deadline = Date.now() + REPLAY_WAIT_MS;
    for (;;) {
      try {
        return await this.owned(id, caller);
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }
}

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** What makes two submissions "the same body" for idempotency: the request's meaning, not its encoding. */
function requestHash(r: ChatRequest): string {
  const image = r.image.kind === 'bytes' ? sha256Hex(r.image.bytes) : r.image.url;
  return sha256Hex(JSON.stringify([r.model ?? null, r.question, r.params, image]));
}
