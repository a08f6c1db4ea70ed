import { z } from 'zod';

/**
 * The OTEL_* variables that decide whether traces are exported at all. Every
 * other OTEL_* variable (protocol, headers, sampler, batch sizes) is read by
 * the OpenTelemetry SDK itself, as the specification defines them. Apps add
 * this fragment to their config schema.
 */
export const TracingEnvSchema = z.object({
  /** `true` turns tracing off entirely: no spans, no trace ids in logs. */
  OTEL_SDK_DISABLED: z
    .enum(['true', 'false', 'TRUE', 'FALSE', ''])
    .optional()
    .transform((v) => v?.toLowerCase() === 'true'),
  /** `otlp`, `console`, `zipkin` or `none`; spans are exported only when this or an OTLP endpoint is set. */
  OTEL_TRACES_EXPORTER: z.string().optional(),
  OTEL_EXPORTER_OTLP_ENDPOINT: z.string().optional(),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z.string().optional(),
  /** Overrides the service name the app reports (`fastvlm-gateway`, `fastvlm-worker`). */
  OTEL_SERVICE_NAME: z.string().optional(),
});
export type TracingEnv = Partial<z.infer<typeof TracingEnvSchema>>;

/** Whether the environment asks for spans to be exported somewhere. */
export function exportConfigured(env: TracingEnv): boolean {
  if (env.OTEL_SDK_DISABLED) return false;
  const exporters = (env.OTEL_TRACES_EXPORTER ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  // As the SDK reads it: `none` first turns exporting off.
  if (exporters[0] === 'none') return false;
  return exporters.length > 0 || Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT) || Boolean(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}
