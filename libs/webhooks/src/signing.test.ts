import OpenAI from 'openai';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { eventBody, newEventId } from './events';
import { newSecret, signatureHeaders } from './signing';

/** A delivery as the worker signs it, at the current time (both verifiers refuse timestamps over 5 min away). */
function delivery(secrets: string[], body = eventBody({ id: newEventId(), object: 'event', type: 'batch.completed', created_at: 1_700_000_000, data: { id: 'batch_abc' } })) {
  const id = newEventId();
  return { id, body, headers: signatureHeaders(id, Math.floor(Date.now() / 1000), body, secrets) };
}

const openai = (secret: string) => new OpenAI({ apiKey: 'unused', webhookSecret: secret });

describe('Standard Webhooks signatures, checked by independent verifiers', () => {
  it('makes secrets as whsec_ + base64 of 32 random bytes, a new one each time', () => {
    const a = newSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    expect(Buffer.from(a.slice('whsec_'.length), 'base64')).toHaveLength(32);
    expect(newSecret()).not.toBe(a);
  });

  it('verifies with the standardwebhooks package and with openai.webhooks.unwrap, which returns the payload', async () => {
    const secret = newSecret();
    const d = delivery([secret]);
    expect(d.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    expect(new Webhook(secret).verify(d.body, d.headers)).toEqual(JSON.parse(d.body));
    expect(await openai(secret).webhooks.unwrap(d.body, d.headers, secret)).toEqual(JSON.parse(d.body));
  });

  it('signs once per active secret, so either secret verifies during a rotation', async () => {
    const old = newSecret();
    const fresh = newSecret();
    const d = delivery([old, fresh]);
    expect(d.headers['webhook-signature']?.split(' ')).toHaveLength(2);
    for (const secret of [old, fresh]) {
      expect(() => new Webhook(secret).verify(d.body, d.headers)).not.toThrow();
      await expect(openai(secret).webhooks.unwrap(d.body, d.headers, secret)).resolves.toMatchObject({ object: 'event' });
    }
    const stranger = newSecret();
    expect(() => new Webhook(stranger).verify(d.body, d.headers)).toThrow();
    await expect(openai(stranger).webhooks.unwrap(d.body, d.headers, stranger)).rejects.toThrow(/signature/);
  });

  it('fails both verifiers when the body, the id or the timestamp was changed', async () => {
    const secret = newSecret();
    const d = delivery([secret]);
    const tampered = [
      { body: d.body.replace('batch_abc', 'batch_xyz'), headers: d.headers },
      { body: d.body, headers: { ...d.headers, 'webhook-id': newEventId() } },
      { body: d.body, headers: { ...d.headers, 'webhook-timestamp': String(Number(d.headers['webhook-timestamp']) - 1) } },
    ];
    for (const t of tampered) {
      expect(() => new Webhook(secret).verify(t.body, t.headers)).toThrow();
      await expect(openai(secret).webhooks.unwrap(t.body, t.headers, secret)).rejects.toThrow();
    }
  });

  it('serializes the thin payload with its fields in a fixed order', () => {
    const body = eventBody({ id: 'evt_1', object: 'event', type: 'job.succeeded', created_at: 1_700_000_000, data: { id: 'job_1' } });
    expect(body).toBe('{"id":"evt_1","object":"event","type":"job.succeeded","created_at":1700000000,"data":{"id":"job_1"}}');
  });
});
