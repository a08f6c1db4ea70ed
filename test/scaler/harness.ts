import { credentials, type ClientReadableStream, type ServiceError, type status } from '@grpc/grpc-js';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { RedisKeys } from '@fastvlm/contracts';
import { createLogger } from '@fastvlm/observability';
import { loadScalerConfig } from '../../apps/scaler/src/config';
import type { GetMetricSpecResponse, GetMetricsResponse, IsActiveResponse, ScaledObjectRef } from '../../apps/scaler/src/grpc/messages';
import { loadExternalScaler } from '../../apps/scaler/src/grpc/proto';
import { startScaler, type ScalerApp } from '../../apps/scaler/src/scaler-app';
import { REDIS_URL } from '../support/stack';

type Unary<Req, Res> = (req: Req, cb: (err: ServiceError | null, res?: Res) => void) => void;

/** The generated client, as @grpc/proto-loader builds it from the scaler's own .proto. */
interface RawClient {
  IsActive: Unary<ScaledObjectRef, IsActiveResponse>;
  GetMetricSpec: Unary<ScaledObjectRef, GetMetricSpecResponse>;
  GetMetrics: Unary<{ scaledObjectRef: ScaledObjectRef; metricName: string }, GetMetricsResponse>;
  StreamIsActive(req: ScaledObjectRef): ClientReadableStream<IsActiveResponse>;
  close(): void;
}

/** What KEDA's operator and metrics server do: plain gRPC calls with a ScaledObjectRef. */
export class KedaClient {
  private readonly raw: RawClient;

  constructor(address: string) {
    const { Client } = loadExternalScaler();
    this.raw = new Client(address, credentials.createInsecure()) as unknown as RawClient;
  }

  isActive(ref: ScaledObjectRef): Promise<boolean> {
    return this.call(this.raw.IsActive, ref).then((r) => r.result);
  }

  getMetricSpec(ref: ScaledObjectRef): Promise<GetMetricSpecResponse> {
    return this.call(this.raw.GetMetricSpec, ref);
  }

  getMetrics(ref: ScaledObjectRef, metricName: string): Promise<GetMetricsResponse> {
    return this.call(this.raw.GetMetrics, { scaledObjectRef: ref, metricName });
  }

  /** Opens StreamIsActive; every value is kept with the time it arrived. */
  streamIsActive(ref: ScaledObjectRef): ActiveStream {
    const call = this.raw.StreamIsActive(ref);
    const values: { result: boolean; at: number }[] = [];
    call.on('data', (r: IsActiveResponse) => values.push({ result: r.result, at: Date.now() }));
    const ended = new Promise<{ code: status; details: string }>((resolve) => {
      call.on('error', (e: ServiceError) => resolve({ code: e.code, details: e.details }));
      call.on('status', (s: { code: status; details: string }) => resolve(s));
    });
    return { values, ended, cancel: () => call.cancel() };
  }

  close(): void {
    this.raw.close();
  }

  private call<Req, Res>(method: Unary<Req, Res>, req: Req): Promise<Res> {
    return new Promise((resolve, reject) => {
      method.call(this.raw, req, (err, res) => (err ? reject(err) : res ? resolve(res) : reject(new Error('no response'))));
    });
  }
}

export interface ActiveStream {
  values: { result: boolean; at: number }[];
  /** The stream's final status (cancelled, an error, or OK when the server ended it). */
  ended: Promise<{ code: status; details: string }>;
  cancel(): void;
}

/** A ScaledObjectRef as KEDA sends it: the trigger's whole metadata, its own `scalerAddress` included. */
export function ref(name: string, scalerMetadata: Record<string, string> = {}, namespace = 'apps'): ScaledObjectRef {
  return { name, namespace, scalerMetadata: { scalerAddress: 'fastvlm-scaler.fastvlm.svc:9090', ...scalerMetadata } };
}

/** Starts the scaler in this process on free ports, against the test Redis and `prefix`. */
export async function startTestScaler(prefix: string, env: Record<string, string> = {}): Promise<ScalerApp> {
  const cfg = loadScalerConfig({
    REDIS_URL,
    FASTVLM_REDIS_PREFIX: prefix,
    SCALER_GRPC_PORT: '0',
    SCALER_HTTP_PORT: '0',
    LOG_LEVEL: 'silent',
    OTEL_SDK_DISABLED: 'true',
    // The model pool the tests' gateways and workers use: its queue is the scaler's default.
    FASTVLM_MODEL: 'tiny-random',
    ...env,
  });
  return startScaler(cfg, createLogger({ name: 'scaler', level: cfg.LOG_LEVEL }));
}

/** A BullMQ queue on the test prefix, as a gateway would enqueue with. */
export function testQueue(prefix: string, name: string): Queue {
  return new Queue(name, { connection: new Redis(REDIS_URL, { maxRetriesPerRequest: null }), prefix: new RedisKeys(prefix).bull() });
}
