import { Body, Controller, Headers, HttpCode, Inject, Post, Res, UseGuards } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import type { Principal } from '@fastvlm/security';
import { ApiKeyGuard, Caller } from '../http/auth.guard';
import { InferenceService } from '../inference/inference.service';
import { RequireScope } from '../security/require-scope';
import { completionId, toChatCompletion, type ChatCompletion } from './completion';
import { lowPriorityHeader, parseChatBody } from './openai-request';
import { streamCompletion } from './stream-completion';

@Controller('v1/chat')
@UseGuards(ApiKeyGuard)
export class ChatController {
  constructor(@Inject(InferenceService) private readonly inference: InferenceService) {}

  @Post('completions')
  @RequireScope('infer')
  @HttpCode(200)
  async complete(
    @Caller() caller: Principal,
    @Body() body: unknown,
    @Headers('x-priority') priority: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<ChatCompletion | undefined> {
    const parsed = parseChatBody(body);
    const req = { ...parsed, lowPriority: parsed.lowPriority || lowPriorityHeader(priority) };
    const outcome = await this.inference.submit(caller, req, 'sync');
    if (req.stream) {
      await streamCompletion(this.inference, reply, outcome, req.includeUsage);
      return undefined;
    }
    if (outcome.kind === 'cached') {
      void reply.header('x-cache', `hit-${outcome.level}`);
      return toChatCompletion(completionId(outcome.jobId), outcome.result);
    }
    const aborted = new AbortController();
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) aborted.abort();
    });
    const result = await this.inference.result(outcome.jobId, outcome.cacheKey, aborted.signal, outcome.reservation);
    void reply.header('x-cache', 'miss');
    return toChatCompletion(completionId(outcome.jobId), result);
  }
}
