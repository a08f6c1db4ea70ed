import { Writable } from 'node:stream';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { createLogger } from '@fastvlm/observability';
import { loadGatewayConfig } from '../../apps/gateway/src/config';
import { createGateway } from '../../apps/gateway/src/gateway';
import { API_KEYS, REDIS_URL, type GatewayHandle } from '../support/stack';

/** A JSON log sink that keeps every line. */
export class LogCapture {
  private text = '';
  readonly stream = new Writable({
    write: (chunk: Buffer, _enc, cb) => {
      this.text += chunk.toString();
      cb();
    },
  });

  raw(): string {
    return this.text;
  }

  lines(): Record<string, unknown>[] {
    return parseJsonLines(this.text);
  }
}

export function parseJsonLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The real gateway in this process, logging (as production does) into `logs`. */
export async function startLoggingGateway(prefix: string, logs: LogCapture, env: Record<string, string> = {}): Promise<GatewayHandle> {
  const cfg = loadGatewayConfig({
    REDIS_URL,
    FASTVLM_REDIS_PREFIX: prefix,
    FASTVLM_MODEL: 'tiny-random',
    FASTVLM_API_KEYS: Object.entries(API_KEYS).map(([t, k]) => `${t}:${k}`).join(','),
    LOG_LEVEL: 'info',
    LOG_REQUESTS: 'true',
    ...env,
  });
  const app: NestFastifyApplication = await createGateway(cfg, createLogger({ name: 'gateway', level: cfg.LOG_LEVEL, destination: logs.stream }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  return { app, url, close: () => app.close() };
}
