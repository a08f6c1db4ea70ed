import { GatewayEnvSchema } from '../../../apps/gateway/src/config';
import { ScalerEnvSchema } from '../../../apps/scaler/src/config';
import { WorkerEnvSchema } from '../../../apps/worker/src/config';

export type AppName = 'gateway' | 'worker' | 'scaler';

export function isAppName(s: string): s is AppName {
  return s === 'gateway' || s === 'worker' || s === 'scaler';
}

/** The configuration variables each app reads: the keys of the env schema its config module validates. */
const CONFIG_KEYS: Readonly<Record<AppName, ReadonlySet<string>>> = {
  gateway: new Set(Object.keys(GatewayEnvSchema.shape)),
  worker: new Set(Object.keys(WorkerEnvSchema.shape)),
  scaler: new Set(Object.keys(ScalerEnvSchema.shape)),
};

/** The keys among `keys` that the app's schema does not know, sorted. */
export function unknownKeys(app: AppName, keys: Iterable<string>): string[] {
  return [...keys].filter((k) => !CONFIG_KEYS[app].has(k)).sort();
}
