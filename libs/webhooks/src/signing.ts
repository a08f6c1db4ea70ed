import { createHmac, randomBytes } from 'node:crypto';

/** Standard Webhooks' secret prefix; what follows is the base64 of the key. */
const SECRET_PREFIX = 'whsec_';
/** 32 random bytes, as OpenAI's secrets (the specification asks for 24 to 64). */
const SECRET_BYTES = 32;

/** A new signing secret, `whsec_` + base64 of 32 random bytes. */
export function newSecret(): string {
  return `${SECRET_PREFIX}${randomBytes(SECRET_BYTES).toString('base64')}`;
}

function keyOf(secret: string): Buffer {
  if (!secret.startsWith(SECRET_PREFIX)) throw new Error('a webhook secret starts with whsec_');
  const key = Buffer.from(secret.slice(SECRET_PREFIX.length), 'base64');
  if (key.length === 0) throw new Error('a webhook secret holds a key');
  return key;
}

/** One `v1,<base64 HMAC-SHA256>` of `{id}.{timestamp}.{body}` (Standard Webhooks). */
export function sign(secret: string, id: string, timestampSeconds: number, body: string): string {
  const mac = createHmac('sha256', keyOf(secret)).update(`${id}.${timestampSeconds}.${body}`, 'utf8').digest('base64');
  return `v1,${mac}`;
}

/** The three headers of a delivery: one signature per active secret, so a receiver still holding the previous one keeps verifying during a rotation. */
export function signatureHeaders(id: string, timestampSeconds: number, body: string, secrets: readonly string[]): Record<string, string> {
  if (secrets.length === 0) throw new Error('a delivery needs at least one active secret');
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestampSeconds),
    'webhook-signature': secrets.map((s) => sign(s, id, timestampSeconds, body)).join(' '),
  };
}
