import { Catch, HttpException, Inject, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { AppError } from '@fastvlm/contracts';
import type { GatewayMetrics } from '@fastvlm/observability';
import { rejectionReason } from '../metrics/cache-lookups';
import { METRICS } from '../metrics/tokens';
import { RejectionAudit } from '../security/rejection-audit';
import { toHttpError } from './errors';
import { LOGGER } from './logger';

/** Every error leaves the gateway in OpenAI's shape, with the status its code maps to. */
@Catch()
export class ErrorFilter implements ExceptionFilter {
  constructor(
    @Inject(LOGGER) private readonly log: Logger,
    @Inject(METRICS) private readonly metrics: GatewayMetrics,
    @Inject(RejectionAudit) private readonly rejections: RejectionAudit,
  ) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    const e = exception instanceof HttpException ? fromNest(exception) : exception;
    const http = toHttpError(e);
    if (http.status >= 500) this.log.error({ err: exception }, 'request failed');
    this.rejections.record(host.switchToHttp().getRequest<FastifyRequest>(), e, http.body.error.code, http.body.error.param);
    if (reply.sent || reply.raw.headersSent) return;
    const rejected = rejectionReason(http.status, http.body.error.code);
    if (rejected) this.metrics.rejected(rejected);
    void reply.code(http.status).headers(http.headers).send(http.body);
  }
}

/** Nest's own exceptions (unknown route, etc.). */
function fromNest(e: HttpException): unknown {
  const status = e.getStatus();
  if (status === 404) return new AppError('not_found', 'No such route.');
  if (status === 401) return new AppError('unauthorized', e.message);
  if (status === 403) return new AppError('forbidden', e.message);
  if (status === 413) return new AppError('payload_too_large', 'The request body is larger than this server accepts.');
  if (status < 500) return new AppError('invalid_request', e.message);
  return e;
}
