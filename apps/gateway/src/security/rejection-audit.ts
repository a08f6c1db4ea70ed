import { Inject, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { isAppError } from '@fastvlm/contracts';
import { ImageFetchFailed, ImageRejected, TextRejected, type AuditLog } from '@fastvlm/security';
import { routeOf, type AuthedRequest } from './access-control';
import { AUDIT_LOG } from './tokens';

const INPUT_CODES = new Set(['invalid_request', 'invalid_image', 'payload_too_large', 'image_url_not_enabled', 'image_fetch_failed', 'model_not_found']);

/**
 * Audits requests refused for their input, by reason. Only the code, the
 * field and a reason name are kept: error messages are not, as they may echo
 * parts of the input.
 */
@Injectable()
export class RejectionAudit {
  constructor(@Inject(AUDIT_LOG) private readonly audit: AuditLog) {}

  record(req: FastifyRequest, e: unknown, code: string, param: string | null): void {
    if (!INPUT_CODES.has(code)) return;
    const p = (req as AuthedRequest).principal;
    const reason = e instanceof ImageRejected || e instanceof TextRejected || e instanceof ImageFetchFailed ? e.reason : isAppError(e) ? e.code : code;
    this.audit.emit({ type: 'input_rejected', reason, code, param, tenant: p?.tenant ?? '(unauthenticated)', keyId: p?.keyId ?? '', route: routeOf(req) });
  }
}
