import { z } from 'zod';
import { HISTORY_SECONDS, STRATEGY_NAMES, type ScalingParams, type StrategyName } from './types';

/** A trigger metadata value that is wrong; the scaler answers gRPC INVALID_ARGUMENT with this message. */
export class InvalidScalerMetadata extends Error {
  constructor(
    /** The metadata key at fault. */
    readonly field: string,
    message: string,
  ) {
    super(`scalerMetadata.${field}: ${message}`);
    this.name = 'InvalidScalerMetadata';
  }
}

/** Until the workers have reported enough to measure, `measured` settings start from these. */
export const PRIOR_REPLICA_CAPACITY = 1;
export const PRIOR_STARTUP_SECONDS = 120;
/** The forecast looks this far past the start-up time by default: one HPA sync and one scaler poll. */
export const HORIZON_SLACK_SECONDS = 30;

const number = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^[0-9]+(\.[0-9]+)?$/, 'must be a plain decimal number')
    .transform(Number)
    .pipe(z.number().min(min).max(max));
const integer = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^[0-9]+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));
const measuredOr = (min: number, max: number) => z.union([z.literal('measured'), number(min, max)]);

/**
 * Queue names as BullMQ takes them here: no `:` (it separates key parts) and nothing a key could be bent with;
 * `~` because a pool's queue writes the other characters of its model id as `~<hex>` (`poolQueue`).
 */
const QUEUE_NAME = /^[A-Za-z0-9_.~-]{1,200}$/;

const MetadataSchema = z
  .object({
    queue: z.string().trim().regex(QUEUE_NAME, 'must be 1-200 of A-Z a-z 0-9 _ . ~ - (a pool\'s queue: poolQueue(model id))').optional(),
    strategy: z.enum(STRATEGY_NAMES, { message: `must be one of ${STRATEGY_NAMES.join(', ')}` }).default('adaptive'),
    targetQueueWaitSeconds: number(0.1, 86_400).default(10),
    replicaCapacity: measuredOr(0.0001, 1_000_000).default('measured'),
    minReplicas: integer(0, 10_000).default(0),
    maxReplicas: integer(1, 10_000).default(100),
    startupSeconds: measuredOr(0, 3_600).default('measured'),
    forecastHorizonSeconds: number(0, 86_400).optional(),
    // The scaler keeps HISTORY_SECONDS of per-second history; KEDA's cooldownPeriod adds its own wait on top.
    scaleToZeroGraceSeconds: number(0, HISTORY_SECONDS).default(60),
  })
  .strict();

/** A ScaledObject's trigger metadata, validated; `measured` values are resolved per tick by `resolveParams`. */
export interface ScalerSettings {
  /** BullMQ queue the ScaledObject scales the workers of. */
  queue: string;
  strategy: StrategyName;
  targetQueueWaitSeconds: number;
  replicaCapacity: number | 'measured';
  minReplicas: number;
  maxReplicas: number;
  startupSeconds: number | 'measured';
  /** null: the start-up time plus HORIZON_SLACK_SECONDS. */
  forecastHorizonSeconds: number | null;
  scaleToZeroGraceSeconds: number;
}

/**
 * KEDA's own keys of an `external`/`external-push` trigger: KEDA passes the trigger's whole metadata
 * to the scaler, these included, so they are not typos.
 */
const KEDA_TRIGGER_KEYS: ReadonlySet<string> = new Set(['scalerAddress', 'enableTLS', 'unsafeSsl', 'tlsCertFile', 'caCert', 'tlsClientCert', 'tlsClientKey']);

/**
 * Validates a trigger's `scalerMetadata`. Unknown keys are refused (a typo would otherwise silently
 * fall back to a default); KEDA's own trigger keys are ignored. `defaultQueue` is the inference queue
 * of the scaler's configured prefix.
 */
export function parseScalerMetadata(metadata: Readonly<Record<string, string>>, defaultQueue: string): ScalerSettings {
  const ours = Object.fromEntries(Object.entries(metadata).filter(([k]) => !KEDA_TRIGGER_KEYS.has(k)));
  const parsed = MetadataSchema.safeParse(ours);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    if (issue?.code === 'unrecognized_keys') {
      throw new InvalidScalerMetadata(issue.keys[0] ?? '?', `unknown setting (known: ${Object.keys(MetadataSchema.shape).join(', ')})`);
    }
    throw new InvalidScalerMetadata(String(issue?.path[0] ?? '?'), issue?.message ?? 'invalid');
  }
  const m = parsed.data;
  if (m.minReplicas > m.maxReplicas) {
    throw new InvalidScalerMetadata('minReplicas', `must not exceed maxReplicas (${m.minReplicas} > ${m.maxReplicas})`);
  }
  return {
    queue: m.queue ?? defaultQueue,
    strategy: m.strategy,
    targetQueueWaitSeconds: m.targetQueueWaitSeconds,
    replicaCapacity: m.replicaCapacity,
    minReplicas: m.minReplicas,
    maxReplicas: m.maxReplicas,
    startupSeconds: m.startupSeconds,
    forecastHorizonSeconds: m.forecastHorizonSeconds ?? null,
    scaleToZeroGraceSeconds: m.scaleToZeroGraceSeconds,
  };
}

/** What the workers' signals measured; null where they have not reported enough yet. */
export interface Measured {
  replicaCapacity: number | null;
  startupSeconds: number | null;
}

/** Settings with `measured` values replaced by the measurements (or their priors). */
export function resolveParams(s: ScalerSettings, measured: Measured): ScalingParams {
  const capacity = s.replicaCapacity === 'measured' ? (measured.replicaCapacity ?? PRIOR_REPLICA_CAPACITY) : s.replicaCapacity;
  const startup = s.startupSeconds === 'measured' ? (measured.startupSeconds ?? PRIOR_STARTUP_SECONDS) : s.startupSeconds;
  return {
    targetQueueWaitSeconds: s.targetQueueWaitSeconds,
    replicaCapacity: capacity,
    minReplicas: s.minReplicas,
    maxReplicas: s.maxReplicas,
    startupSeconds: startup,
    forecastHorizonSeconds: s.forecastHorizonSeconds ?? startup + HORIZON_SLACK_SECONDS,
    scaleToZeroGraceSeconds: s.scaleToZeroGraceSeconds,
  };
}
