import { METRICS, type LabelsOf, type MetricKey } from './catalogue';
import { MetricsRegistry } from './registry';

/** What the scaler reads of a queue, as the `signal` label spells it. */
export const SCALER_SIGNALS = ['queued', 'active', 'ready', 'loading', 'arrivals_per_second', 'replica_capacity', 'startup_seconds'] as const;
export type ScalerSignal = (typeof SCALER_SIGNALS)[number];

/** A ScaledObject's latest decision, as its gauges show it. */
export interface ScaledObjectGauges {
  /** `namespace/name`, or `default` for the scaler's own watches (one per configured model pool). */
  scaledObject: string;
  queue: string;
  /** Desired replicas by strategy name (every strategy, shadow mode). */
  desired: Readonly<Record<string, number>>;
  /** The ScaledObject's own strategy. */
  chosen: string;
  panic: boolean;
  /** null: no trusted forecast (the series is left out). */
  forecastRps: number | null;
  active: boolean;
}

type Emit<K extends MetricKey> = (value: number, labels: LabelsOf<K>) => void;

/**
 * What the scaler measures. The gRPC counter lives in the OpenTelemetry
 * registry like every other counter. The per-ScaledObject and per-queue gauges
 * are written at scrape time from the latest tick instead: OpenTelemetry keeps
 * reporting a gauge series it has seen once, so a ScaledObject that went away
 * (or changed strategy, leaving a second `chosen="true"`) would stay in every
 * scrape with its last value. Here a series lives exactly as long as what it
 * describes is watched.
 */
export class ScalerMetrics {
  readonly registry: MetricsRegistry;
  private readonly grpc;
  /** By ScaledObject and queue: the scaler's own `default` watches are one per pool. */
  private readonly objects = new Map<string, ScaledObjectGauges>();
  private readonly signals = new Map<string, Readonly<Record<ScalerSignal, number>>>();

  constructor(onError?: (err: unknown) => void) {
    this.registry = new MetricsRegistry('fastvlm-scaler', onError);
    this.grpc = this.registry.counter('scalerGrpcRequests');
  }

  /** The latest decision of a ScaledObject on a queue. */
  scaledObject(gauges: ScaledObjectGauges): void {
    this.objects.set(`${gauges.scaledObject}\n${gauges.queue}`, gauges);
  }

  /** Drops a ScaledObject's series on every queue (it went away, or moved to another queue). */
  forgetScaledObject(scaledObject: string): void {
    for (const [k, o] of this.objects) if (o.scaledObject === scaledObject) this.objects.delete(k);
  }

  /** The latest reading of a queue. */
  queueSignals(queue: string, values: Readonly<Record<ScalerSignal, number>>): void {
    this.signals.set(queue, values);
  }

  forgetQueue(queue: string): void {
    this.signals.delete(queue);
  }

  /** One answered gRPC call (a stream: when it ended), with its status code name. */
  grpcRequest(method: string, code: string): void {
    this.grpc(1, { method, code });
  }

  /** Prometheus text: the registry's metrics, then the live gauges. */
  async scrape(): Promise<string> {
    const base = await this.registry.scrape();
    return `${base.endsWith('\n') || base === '' ? base : `${base}\n`}${this.renderGauges()}`;
  }

  private renderGauges(): string {
    const objects = [...this.objects.values()];
    return [
      gauge('scalerDesiredReplicas', (emit) => {
        for (const o of objects) {
          for (const [strategy, n] of Object.entries(o.desired)) emit(n, { scaled_object: o.scaledObject, queue: o.queue, strategy, chosen: String(strategy === o.chosen) });
        }
      }),
      gauge('scalerMode', (emit) => {
        for (const o of objects) emit(o.panic ? 1 : 0, { scaled_object: o.scaledObject, queue: o.queue });
      }),
      gauge('scalerForecastArrivals', (emit) => {
        for (const o of objects) if (o.forecastRps !== null) emit(o.forecastRps, { scaled_object: o.scaledObject, queue: o.queue });
      }),
      gauge('scalerActive', (emit) => {
        for (const o of objects) emit(o.active ? 1 : 0, { scaled_object: o.scaledObject, queue: o.queue });
      }),
      gauge('scalerSignal', (emit) => {
        for (const [queue, values] of this.signals) for (const signal of SCALER_SIGNALS) emit(values[signal], { queue, signal });
      }),
    ].join('');
  }
}

/** One gauge in the Prometheus text format, as the catalogue defines it; nothing when it has no series. */
function gauge<K extends MetricKey>(key: K, observe: (emit: Emit<K>) => void): string {
  const def = METRICS[key];
  const rows: string[] = [];
  observe((value, labels) => {
    const ls = def.labels.map((l) => `${l}="${escapeLabel((labels as Record<string, string>)[l] ?? '')}"`).join(',');
    rows.push(`${def.name}${ls ? `{${ls}}` : ''} ${formatValue(value)}\n`);
  });
  if (rows.length === 0) return '';
  return `# HELP ${def.name} ${def.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}\n# TYPE ${def.name} gauge\n${rows.join('')}`;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}
