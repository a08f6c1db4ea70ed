import type { FastifyReply } from 'fastify';
import { toHttpError } from '../http/errors';
import { SseWriter } from '../http/sse';
import type { InferenceService } from '../inference/inference.service';
import type { Admitted } from '../intake/request-gate';
import { chunk, completionId, usageOf, type ChunkBase } from './completion';

/**
 * Relays a job's tokens as `chat.completion.chunk` events, as the worker
 * produces them, ending with `data: [DONE]`. Token events carry their index,
 * so tokens repeated by a re-run after a worker crash are dropped.
 *
 * The stream has the sync deadline (SYNC_TIMEOUT_MS): past it, a final error
 * chunk (`timeout`, OpenAI's error shape) and `[DONE]`. Meanwhile keep-alive
 * comments hold the connection open through idle-timeout proxies.
 */
export async function streamCompletion(
  inference: InferenceService,
  reply: FastifyReply,
  outcome: Admitted,
  includeUsage: boolean,
): Promise<void> {
  const sse = new SseWriter(reply, {
    keepAliveMs: inference.keepAliveMs,
    extraHeaders: { 'x-cache': outcome.kind === 'cached' ? `hit-${outcome.level}` : 'miss' },
  });
  const base: ChunkBase = { id: completionId(outcome.jobId), model: outcome.model, created: Math.floor(Date.now() / 1000) };
  const usageField = includeUsage ? null : undefined;
  sse.send(chunk(base, { delta: { role: 'assistant', content: '' }, finishReason: null }, usageField));
  try {
    if (outcome.kind === 'cached') {
      const r = outcome.result;
      sse.send(chunk(base, { delta: { content: r.text }, finishReason: null }, usageField));
      sse.send(chunk(base, { delta: {}, finishReason: r.finishReason }, usageField));
      if (includeUsage) sse.send(chunk(base, null, usageOf(r)));
    } else {
      const deadline = AbortSignal.timeout(inference.syncTimeoutMs);
      const abandoned = { cancelled: false };
      let answered = false;
      let next = 0;
      for await (const { event } of inference.waitFor(outcome.jobId, AbortSignal.any([sse.aborted, deadline]), abandoned)) {
        if (event.type === 'token') {
          if (event.index < next) continue;
          next = event.index + 1;
          if (event.text) sse.send(chunk(base, { delta: { content: event.text }, finishReason: null }, usageField));
          continue;
        }
        const r = inference.finalOf(event);
        if (!r) continue;
        answered = true;
        if (outcome.cacheKey) inference.remember(outcome.cacheKey, r);
        inference.settle(outcome.reservation, r);
        sse.send(chunk(base, { delta: {}, finishReason: r.finishReason }, usageField));
        if (includeUsage) sse.send(chunk(base, null, usageOf(r)));
        break;
      }
      if (!answered && deadline.aborted) throw inference.timeoutError(outcome.jobId, abandoned.cancelled);
    }
  } catch (e) {
    // Headers are gone; errors travel in the stream, as OpenAI's API does.
    sse.send(toHttpError(e).body);
  }
  sse.send('[DONE]');
  sse.end();
}
