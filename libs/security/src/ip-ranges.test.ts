import { describe, expect, it } from 'vitest';
import { embeddedIpv4, inList, isPublicAddress, parseCidrList } from './ip-ranges';

describe('isPublicAddress', () => {
  it.each([
    '127.0.0.1', '127.1.2.3', '10.0.0.1', '172.16.5.4', '172.31.255.255', '192.168.1.1', '169.254.169.254', '169.254.0.1',
    '100.64.0.1', '0.0.0.0', '224.0.0.1', '255.255.255.255', '198.18.0.1',
    '::1', '::', 'fe80::1', 'fd00::1', 'fc00::abcd', 'ff02::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1', '::ffff:169.254.169.254',
    '::ffff:7f00:1', '64:ff9b::a9fe:a9fe', '2002:c0a8:0101::1', '2001:db8::1', '::127.0.0.1', 'not-an-ip', '',
  ])('refuses %s', (ip) => {
    expect(isPublicAddress(ip)).toBe(false);
  });

  it.each(['8.8.8.8', '1.1.1.1', '93.184.216.34', '172.32.0.1', '2606:4700:4700::1111', '2a00:1450:4001:80b::200e', '::ffff:8.8.8.8'])('allows %s', (ip) => {
    expect(isPublicAddress(ip)).toBe(true);
  });

  it('reads the IPv4 address inside mapped, NAT64 and 6to4 forms', () => {
    expect(embeddedIpv4('::ffff:192.168.0.1')).toBe('192.168.0.1');
    expect(embeddedIpv4('::ffff:c0a8:1')).toBe('192.168.0.1');
    expect(embeddedIpv4('64:ff9b::808:808')).toBe('8.8.8.8');
    expect(embeddedIpv4('2002:0a00:0001::')).toBe('10.0.0.1');
    expect(embeddedIpv4('2606:4700::1')).toBeNull();
  });
});

describe('CIDR allowlists', () => {
  it('matches addresses inside the ranges, IPv4-mapped ones included', () => {
    const list = parseCidrList(['10.1.0.0/16', '203.0.113.7', '2001:db8::/48'], 'ipAllowlist');
    expect(inList(list, '10.1.2.3')).toBe(true);
    expect(inList(list, '::ffff:10.1.2.3')).toBe(true);
    expect(inList(list, '203.0.113.7')).toBe(true);
    expect(inList(list, '203.0.113.8')).toBe(false);
    expect(inList(list, '2001:db8:0:1::5')).toBe(true);
    expect(inList(list, '2001:db9::5')).toBe(false);
  });

  it('rejects entries that are not addresses or ranges, naming the field', () => {
    for (const bad of ['10.0.0.0/33', 'example.com', '10.0.0.0/', '1.2.3.4/x', '::1/129']) {
      expect(() => parseCidrList([bad], 'ipAllowlist')).toThrow(/not an IP address or CIDR/);
    }
  });
});
