import { Controller, Delete, Get, HttpCode, Inject, Param, Post, Req, Res, UseGuards } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '@fastvlm/contracts';
import { isStreamId, newJobId, sha256Hex, type IdempotencyKeys, type JobRecord, type JobStore } from '@fastvlm/jobs';
import type { Principal } from '@fastvlm/security';
import { completionId, toChatCompletion } from '../chat/completion';
import { parseChatBody, type ChatRequest } from '../chat/openai-request';
import { ApiKeyGuard, Caller } from '../http/auth.guard';
import { toHttpError } from '../http/errors';
import { SseWriter } from '../http/sse';
import { IDEMPOTENCY, JOB_STORE } from '../infra/tokens';
import { InferenceService } from '../inference/inference.service';
import type { Admitted } from '../intake/request-gate';
import { RequireScope } from '../security/require-scope';
import { toJobView, type JobView } from './job-view';
import { readMultipartJob } from './multipart';

const REPLAY_WAIT_MS = 2_000;

@Controller('v1/jobs')
@UseGuards(ApiKeyGuard)
export class JobsController {
  constructor(
    @Inject(InferenceService) private readonly inference: InferenceService,
    @Inject(JOB_STORE) private readonly store: JobStore,
    @Inject(IDEMPOTENCY) private readonly idempotency: IdempotencyKeys,
  ) {}

  @Post()
  @RequireScope('infer')
  @HttpCode(202)
  async create(@Caller() caller: Principal, @Req() req: FastifyRequest, @Res({ passthrough: true }) reply: FastifyReply): Promise<JobView> {
    const input: ChatRequest = req.isMultipart() ? await readMultipartJob(req) : parseChatBody(req.body);
    if (input.stream) throw new AppError('invalid_request', 'Jobs do not stream in the response; follow GET /v1/jobs/{id}/events.', 'stream');
    const idemKey = header(req, 'idempotency-key');
    let jobId = newJobId();
    if (idemKey !== undefined) {
      const claim = await this.idempotency.claim(caller.tenant, idemKey, requestHash(input), jobId);
      if (claim.replay) {
        void reply.header('location', `/v1/jobs/${claim.jobId}`).header('idempotent-replayed', 'true');
        return toJobView(await this.awaitRecord(claim.jobId, caller));
      }
      jobId = claim.jobId;
    }
    let outcome: Admitted;
    try {
      outcome = await this.inference.submit(caller, input, 'async', jobId);
    } catch (e) {
      if (idemKey !== undefined) await this.idempotency.release(caller.tenant, idemKey).catch(() => undefined);
      throw e;
    }
    void reply.header('location', `/v1/jobs/${jobId}`).header('x-cache', outcome.kind === 'cached' ? `hit-${outcome.level}` : 'miss');
    // The record as this request created it; no need to read it back.
    const accepted: JobRecord = { id: jobId, tenant: caller.tenant, model: this.inference.modelId, createdAt: outcome.createdAt, status: 'queued' };
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
    await this.store.cancel(id, Date.now());
    return toJobView(await this.owned(id, caller));
  }

  @Get(':id/events')
  @RequireScope('jobs:read')
  async events(@Caller() caller: Principal, @Param('id') id: string, @Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    await this.owned(id, caller);
    const last = header(req, 'last-event-id') ?? '0';
    if (last !== '0' && !isStreamId(last)) throw new AppError('invalid_request', 'Last-Event-ID is not an event id of this stream.', 'Last-Event-ID');
    const sse = new SseWriter(reply);
    try {
      for await (const { id: entryId, event } of this.inference.follow(id, last, sse.aborted)) {
        switch (event.type) {
          case 'status':
            sse.send({ status: event.status }, { id: entryId, event: 'status' });
            break;
          case 'token':
            sse.send({ index: event.index, text: event.text }, { id: entryId, event: 'token' });
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

  /** A replayed request may arrive before the first one's job record is written. */
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
