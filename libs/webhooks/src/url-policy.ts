import { BlockList, isIP } from 'node:net';
import { AppError } from '@fastvlm/contracts';
import { checkUrlTarget, inList, isPublicAddress, normalizeClientIp, parseCidrList, type Resolver } from '@fastvlm/security';

export interface WebhookUrlPolicy {
  /** Internal ranges an operator allows explicitly (CIDRs or addresses); public unicast is always allowed. */
  allowCidrs: readonly string[];
  /** Test-only: also allow 127.0.0.0/8 and ::1, for receivers on loopback. Never on in a deployment. */
  allowLoopbackForTests: boolean;
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

function isLoopback(ip: string): boolean {
  const n = normalizeClientIp(ip);
  const family = isIP(n);
  return family !== 0 && LOOPBACK.check(n, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * Which addresses webhook deliveries may connect to: what image URLs may
 * (public unicast), the operator's extra ranges, and loopback only where the
 * test-only switch is on. A bad CIDR is an `invalid_request` naming the variable.
 */
export function webhookAddressPolicy(p: WebhookUrlPolicy): (ip: string) => boolean {
  const extra = p.allowCidrs.length > 0 ? parseCidrList(p.allowCidrs, 'WEBHOOK_URL_ALLOW_CIDRS') : null;
  return (ip) => isPublicAddress(ip) || (extra !== null && inList(extra, ip)) || (p.allowLoopbackForTests && isLoopback(ip));
}

/**
 * Checks an endpoint URL when an admin registers or changes it: http(s), no
 * credentials, and a host whose every address the policy allows. Each
 * delivery checks again and pins the address (DNS may change after this).
 */
export async function assertWebhookUrl(url: string, isAllowedAddress: (ip: string) => boolean, resolve?: Resolver): Promise<void> {
  if (url.length > 2048) throw new AppError('invalid_request', 'Webhook URLs are at most 2048 characters.', 'url');
  const refused = await checkUrlTarget(url, { isAllowedAddress, ...(resolve ? { resolve } : {}) });
  if (refused) throw new AppError('invalid_request', `Invalid webhook url: ${refused.message}`, 'url');
}
