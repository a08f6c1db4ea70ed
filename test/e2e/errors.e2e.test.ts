import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auth, chatBody, dataUrl, png, postJson } from '../support/requests';
import { cleanupPrefix, startGateway, startWorker, stopWorker, uniquePrefix, type GatewayHandle, type WorkerProcess } from '../support/stack';

interface ErrorBody {
  error: { message: string; type: string; code: string; param: string | null };
}

async function expectError(res: Response, status: number, code: string): Promise<ErrorBody> {
  expect(res.status).toBe(status);
  const body = (await res.json()) as ErrorBody;
  expect(body.error.code).toBe(code);
  expect(body.error.message.length).toBeGreaterThan(5);
  expect(typeof body.error.type).toBe('string');
  return body;
}

describe('errors in OpenAI shape with the right status', () => {
  const prefix = uniquePrefix();
  let gw: GatewayHandle;
  let worker: WorkerProcess;
  let image: Buffer;
  const url = (): string => `${gw.url}/v1/chat/completions`;

  beforeAll(async () => {
    [gw, worker, image] = await Promise.all([startGateway(prefix, { BODY_LIMIT_BYTES: String(2 * 1024 * 1024) }), startWorker(prefix), png(32, 32, 3)]);
  });
  afterAll(async () => {
    await gw?.close();
    if (worker) await stopWorker(worker);
    await cleanupPrefix(prefix);
  });

  it('401 without a key, with a malformed header, and with an unknown key', async () => {
    await expectError(await postJson(url(), chatBody(image, 'q'), {}), 401, 'unauthorized');
    await expectError(await postJson(url(), chatBody(image, 'q'), { authorization: 'Basic abc' }), 401, 'unauthorized');
    const body = await expectError(await postJson(url(), chatBody(image, 'q'), { authorization: 'Bearer not-a-real-key-000000' }), 401, 'unauthorized');
    expect(body.error.type).toBe('authentication_error');
    await expectError(await fetch(`${gw.url}/v1/models`), 401, 'unauthorized');
  });

  it('400 for a body that is not JSON or not a chat request', async () => {
    const res = await fetch(url(), { method: 'POST', headers: { ...auth(), 'content-type': 'application/json' }, body: '{"messages": [' });
    await expectError(res, 400, 'invalid_request');
    await expectError(await postJson(url(), { messages: 'hello' }), 400, 'invalid_request');
    const noImage = { model: 'tiny-random', messages: [{ role: 'user', content: 'just text' }] };
    const b = await expectError(await postJson(url(), noImage), 400, 'invalid_request');
    expect(b.error.param).toBe('messages.0.content');
    const twoMessages = chatBody(image, 'q');
    (twoMessages.messages as unknown[]).unshift({ role: 'system', content: 'be terse' });
    await expectError(await postJson(url(), twoMessages), 400, 'invalid_request');
  });

  it('400 naming the field for out-of-range parameters', async () => {
    const b = await expectError(await postJson(url(), chatBody(image, 'q', { max_tokens: 0 })), 400, 'invalid_request');
    expect(b.error.param).toBe('max_tokens');
    await expectError(await postJson(url(), chatBody(image, 'q', { temperature: 3 })), 400, 'invalid_request');
    await expectError(await postJson(url(), chatBody(image, 'q', { max_tokens: 'ten' })), 400, 'invalid_request');
    await expectError(await postJson(url(), chatBody(image, '   ')), 400, 'invalid_request');
  });

  it('400 for text sent as an image, bad base64, and images that do not decode', async () => {
    const text = Buffer.from('this is plainly not an image, just some text');
    const asImage = await expectError(await postJson(url(), chatBody(dataUrl(text), 'q')), 400, 'invalid_image');
    expect(asImage.error.message).toMatch(/not a JPEG, PNG, WebP or GIF/);
    await expectError(await postJson(url(), chatBody('data:image/png;base64,@@@not-base64@@@', 'q')), 400, 'invalid_image');
    await expectError(await postJson(url(), chatBody('data:image/png,rawbytes', 'q')), 400, 'invalid_request');
    await expectError(await postJson(url(), chatBody(dataUrl(Buffer.alloc(0)), 'q')), 400, 'invalid_image');
    // A PNG cut in the middle of its pixel data: the header reads fine, the pixels do not.
    const truncated = (await png(200, 200, 5)).subarray(0, 400);
    await expectError(await postJson(url(), chatBody(truncated, 'truncated?')), 400, 'invalid_image');
  });

  it('400 "not enabled" for http(s) image URLs', async () => {
    await expectError(await postJson(url(), chatBody('https://example.com/cat.jpg', 'q')), 400, 'image_url_not_enabled');
  });

  it('404 for a model this cluster does not serve, and for unknown routes', async () => {
    await expectError(await postJson(url(), chatBody(image, 'q', { model: 'gpt-4o' })), 404, 'model_not_found');
    await expectError(await fetch(`${gw.url}/v1/nothing-here`, { headers: auth() }), 404, 'not_found');
  });

  it('413 for a body over the limit, before the gateway reads it all', async () => {
    const huge = 'A'.repeat(3 * 1024 * 1024);
    await expectError(await postJson(url(), chatBody(`data:image/png;base64,${huge}`, 'q')), 413, 'payload_too_large');
  });

  it('stays ready and answering after all of the above', async () => {
    expect((await fetch(`${gw.url}/health/ready`)).status).toBe(200);
    expect((await postJson(url(), chatBody(image, 'still there?', { max_tokens: 3 }))).status).toBe(200);
  });
});
