import sharp from 'sharp';
import { API_KEYS } from './stack';

/** A deterministic PNG: a gradient tinted by `seed`, so different seeds are different images. */
export async function png(width = 64, height = 48, seed = 0): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      raw[i] = (x * 4 + seed * 37) % 256;
      raw[i + 1] = (y * 5 + seed * 11) % 256;
      raw[i + 2] = (x * y + seed * 71) % 256;
    }
  }
  return sharp(raw, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

export const dataUrl = (bytes: Buffer, type = 'image/png'): string => `data:${type};base64,${bytes.toString('base64')}`;

export function chatBody(image: Buffer | string, question: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    model: 'tiny-random',
    max_tokens: 16,
    messages: [
      {
        role: 'user',
        content: [
          { type: 'text', text: question },
          { type: 'image_url', image_url: { url: typeof image === 'string' ? image : dataUrl(image) } },
        ],
      },
    ],
    ...extra,
  };
}

export type Tenant = keyof typeof API_KEYS;

export function auth(tenant: Tenant = 'acme'): Record<string, string> {
  return { authorization: `Bearer ${API_KEYS[tenant]}` };
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = auth()): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
}

export interface SseEvent {
  id?: string;
  event?: string;
  data: string;
}

/** Reads a whole SSE response into its events. */
export async function readSse(res: Response): Promise<SseEvent[]> {
  const text = await res.text();
  const events: SseEvent[] = [];
  for (const block of text.split('\n\n')) {
    if (!block.trim()) continue;
    const ev: SseEvent = { data: '' };
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith('id: ')) ev.id = line.slice(4);
      else if (line.startsWith('event: ')) ev.event = line.slice(7);
      else if (line.startsWith('data: ')) data.push(line.slice(6));
    }
    ev.data = data.join('\n');
    events.push(ev);
  }
  return events;
}
