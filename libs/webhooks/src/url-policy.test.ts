import { describe, expect, it } from 'vitest';
import { AppError } from '@fastvlm/contracts';
import type { Resolver } from '@fastvlm/security';
import { assertWebhookUrl, webhookAddressPolicy } from './url-policy';

/** Names that resolve where the test says, without DNS. */
const resolver: Resolver = (host) =>
  Promise.resolve(
    host === 'public.example' ? [{ address: '93.184.215.14', family: 4 }]
    : host === 'intranet.example' ? [{ address: '10.1.2.3', family: 4 }]
    : host === 'split.example' ? [{ address: '93.184.215.14', family: 4 }, { address: '127.0.0.1', family: 4 }]
    : host === 'localhost' ? [{ address: '127.0.0.1', family: 4 }, { address: '::1', family: 6 }]
    : Promise.reject(new Error('ENOTFOUND')),
  );

async function refusal(url: string, allowed: (ip: string) => boolean): Promise<AppError | null> {
  try {
    await assertWebhookUrl(url, allowed, resolver);
    return null;
  } catch (e) {
    if (e instanceof AppError) return e;
    throw e;
  }
}

describe('webhook URL guard', () => {
  const strict = webhookAddressPolicy({ allowCidrs: [], allowLoopbackForTests: false });
  const forTests = webhookAddressPolicy({ allowCidrs: [], allowLoopbackForTests: true });

  it('accepts public http(s) URLs', async () => {
    expect(await refusal('https://public.example/hooks', strict)).toBeNull();
    expect(await refusal('http://93.184.215.14:8080/in', strict)).toBeNull();
  });

  it('refuses loopback, private, link-local and unresolvable hosts by default, as a 400 naming url', async () => {
    for (const url of ['http://127.0.0.1:9000/', 'http://localhost/', 'http://[::1]/', 'http://10.0.0.1/', 'http://intranet.example/', 'http://169.254.169.254/latest', 'http://[::ffff:127.0.0.1]/', 'http://split.example/', 'http://nowhere.example/']) {
      const e = await refusal(url, strict);
      expect(e?.code, url).toBe('invalid_request');
      expect(e?.param, url).toBe('url');
    }
  });

  it('refuses other schemes, credentials and malformed URLs', async () => {
    for (const url of ['ftp://public.example/', 'https://user:pw@public.example/', 'not a url', `https://public.example/${'a'.repeat(2100)}`]) {
      expect((await refusal(url, strict))?.param, url).toBe('url');
    }
  });

  it('allows loopback only with the test-only switch, and nothing else private with it', async () => {
    for (const url of ['http://127.0.0.1:9000/', 'http://127.8.9.10/', 'http://[::1]/', 'http://localhost/', 'http://split.example/']) {
      expect(await refusal(url, forTests), url).toBeNull();
    }
    for (const url of ['http://10.0.0.1/', 'http://192.168.1.1/', 'http://169.254.169.254/', 'http://[fd00::1]/']) {
      expect((await refusal(url, forTests))?.param, url).toBe('url');
    }
  });

  it('allows the internal ranges an operator lists, and refuses a bad list', async () => {
    const internal = webhookAddressPolicy({ allowCidrs: ['10.1.0.0/16'], allowLoopbackForTests: false });
    expect(await refusal('http://intranet.example/', internal)).toBeNull();
    expect((await refusal('http://10.2.0.1/', internal))?.param).toBe('url');
    expect((await refusal('http://127.0.0.1/', internal))?.param).toBe('url');
    expect(() => webhookAddressPolicy({ allowCidrs: ['10.0.0.0/99'], allowLoopbackForTests: false })).toThrow(AppError);
  });
});
