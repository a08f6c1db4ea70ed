import { z } from 'zod';
import { STRATEGY_NAMES } from '@fastvlm/autoscaling';
import { LogEnvSchema, ModelEnvSchema, ModelRoutingEnvShape, RedisEnvShape, checkModelRouting, checkRedisTopology, parseEnv } from '@fastvlm/contracts';
import { TracingEnvSchema } from '@fastvlm/observability';

const int = (min: number) => z.coerce.number().int().min(min);

/** The scaler's environment, validated once at start-up (exported for the deploy checks that read its keys). */
export const ScalerEnvSchema = z.object(RedisEnvShape).extend(LogEnvSchema.shape)
  .extend(TracingEnvSchema.shape)
  // The gateways' model settings: the pools are theirs, and the scaler watches each pool's queue.
  .extend({ FASTVLM_MODEL: ModelEnvSchema.shape.FASTVLM_MODEL })
  .extend(ModelRoutingEnvShape)
  .extend({
    /** Port of KEDA's external-scaler gRPC server (`scalerAddress` in the ScaledObject). Default 9090; 0 picks a free one (logged). */
    SCALER_GRPC_PORT: int(0).max(65_535).default(9090),
    /** Address the gRPC server binds. Default 127.0.0.1; containers set 0.0.0.0 so KEDA reaches it. */
    SCALER_GRPC_HOST: z.string().min(1).default('127.0.0.1'),
    /** Port of the HTTP server (/metrics, /health/live, /health/ready). Default 9466; 0 picks a free one (logged). */
    SCALER_HTTP_PORT: int(0).max(65_535).default(9466),
    /** Address the HTTP server binds. Default 127.0.0.1; containers set 0.0.0.0 so Prometheus and the kubelet reach it. */
    SCALER_HTTP_HOST: z.string().min(1).default('127.0.0.1'),
    /**
     * Milliseconds between two ticks: each reads every watched queue, records its per-second sample and
     * decides for every watched ScaledObject. Default 1000 (the sample resolution the strategies assume).
     * A first job on an idle queue is pushed to StreamIsActive at once, whatever the tick.
     */
    SCALER_TICK_MS: int(100).max(600_000).default(1_000),
    /** Strategy of the scaler's own watches of the configured pools' queues (the `default` ScaledObject). Default adaptive. */
    SCALER_STRATEGY: z.enum(STRATEGY_NAMES).default('adaptive'),
  });

export type ScalerConfig = z.infer<typeof ScalerEnvSchema>;

export function loadScalerConfig(env: NodeJS.ProcessEnv = process.env): ScalerConfig {
  return parseEnv(
    ScalerEnvSchema.superRefine((e, ctx) => {
      checkRedisTopology(e, ctx);
      checkModelRouting(e, ctx);
    }),
    env,
  );
}
