import { BlockList, isIP } from 'node:net';
import { AppError } from '@fastvlm/contracts';

/**
 * Address ranges a server-side fetch must never reach: private, loopback,
 * link-local (cloud metadata at 169.254.169.254 included), shared, reserved,
 * documentation, multicast and unique-local space. IPv6 forms that embed an
 * IPv4 address (mapped, NAT64, 6to4) are judged by the embedded address.
 */
const FORBIDDEN = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  FORBIDDEN.addSubnet(net, bits, 'ipv4');
}
for (const [net, bits] of [
  ['::', 128],
  ['::1', 128],
  ['100::', 64],
  ['2001::', 23],
  ['2001:db8::', 32],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
] as const) {
  FORBIDDEN.addSubnet(net, bits, 'ipv6');
}

/** The IPv4 address an IPv6 address carries (mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`), if any. */
export function embeddedIpv4(ip: string): string | null {
  const words = expandIpv6(ip);
  if (!words) return null;
  const v4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
  const zero = (from: number, to: number) => words.slice(from, to).every((w) => w === 0);
  if (zero(0, 5) && words[5] === 0xffff) return v4(words[6] ?? 0, words[7] ?? 0);
  if (words[0] === 0x64 && words[1] === 0xff9b && zero(2, 6)) return v4(words[6] ?? 0, words[7] ?? 0);
  if (words[0] === 0x2002) return v4(words[1] ?? 0, words[2] ?? 0);
  // IPv4-compatible (deprecated) ::a.b.c.d
  if (zero(0, 6) && ((words[6] ?? 0) !== 0 || (words[7] ?? 0) > 1)) return v4(words[6] ?? 0, words[7] ?? 0);
  return null;
}

/** Eight 16-bit words of an IPv6 address, or null when `ip` is not one. */
function expandIpv6(ip: string): number[] | null {
  if (isIP(ip) !== 6) return null;
  let s = ip.split('%')[0] ?? '';
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (dotted?.[1]) {
    const p = dotted[1].split('.').map(Number);
    s = `${s.slice(0, -dotted[1].length)}${(((p[0] ?? 0) << 8) | (p[1] ?? 0)).toString(16)}:${(((p[2] ?? 0) << 8) | (p[3] ?? 0)).toString(16)}`;
  }
  const [head, tail] = s.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const fill = tail === undefined ? 0 : 8 - h.length - t.length;
  const words = [...h, ...Array<string>(fill).fill('0'), ...t].map((w) => parseInt(w, 16));
  return words.length === 8 && words.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffff) ? words : null;
}

/** Whether a server-side fetch may connect to `ip` (a public unicast address). */
export function isPublicAddress(ip: string): boolean {
  const family = isIP(ip);
  if (family === 4) return !FORBIDDEN.check(ip, 'ipv4');
  if (family !== 6) return false;
  const v4 = embeddedIpv4(ip);
  if (v4 !== null) return isPublicAddress(v4);
  // Only global unicast (2000::/3) is routable on the internet.
  const first = parseInt(ip.split(':')[0] || '0', 16);
  if (first < 0x2000 || first > 0x3fff) return false;
  return !FORBIDDEN.check(ip, 'ipv6');
}

/** A client address as IPv4 when it is an IPv4-mapped IPv6 one (how dual-stack sockets report IPv4 peers). */
export function normalizeClientIp(ip: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return m?.[1] ?? ip;
}

/** Parses CIDRs and single addresses into a BlockList; a bad entry is an `invalid_request` naming `field`. */
export function parseCidrList(entries: readonly string[], field: string): BlockList {
  const list = new BlockList();
  for (const raw of entries) {
    const entry = raw.trim();
    const [addr = '', bitsText] = entry.split('/');
    const family = isIP(addr);
    const bits = bitsText === undefined ? (family === 4 ? 32 : 128) : Number(bitsText);
    if (family === 0 || !Number.isInteger(bits) || bits < 0 || bits > (family === 4 ? 32 : 128) || (bitsText !== undefined && !/^\d+$/.test(bitsText))) {
      throw new AppError('invalid_request', `"${entry}" is not an IP address or CIDR range.`, field);
    }
    list.addSubnet(addr, bits, family === 4 ? 'ipv4' : 'ipv6');
  }
  return list;
}

/** Whether `ip` falls in `list` (IPv4-mapped IPv6 addresses are checked as IPv4). */
export function inList(list: BlockList, ip: string): boolean {
  const n = normalizeClientIp(ip);
  const family = isIP(n);
  if (family === 0) return false;
  return list.check(n, family === 4 ? 'ipv4' : 'ipv6');
}
