import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { SCALER_NAMES, SCENARIO_DEFAULTS, isScalerName, type ScalerName } from './scenario';
import { TraceFormatError, parseTrace, type Trace } from './trace';

/** A problem with the command line or its inputs: reported in one line, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export interface CliOptions {
  trace: string;
  strategy: ScalerName;
  scale: number | 'auto';
  replicaRps: number;
  startupS: number;
  sloS: number;
  seed: number;
  json: boolean;
  plot: string | null;
}

export const USAGE =
  'usage: npm run scaler:simulate -- --trace FILE --strategy NAME [--scale X|auto] [--replica-rps R] [--startup-s S] [--slo-s T] [--seed N] [--json] [--plot out.svg]';

/** The command line, validated; throws `UsageError` naming the flag at fault. */
export function parseCli(argv: readonly string[]): CliOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        trace: { type: 'string' },
        strategy: { type: 'string' },
        scale: { type: 'string', default: 'auto' },
        'replica-rps': { type: 'string', default: String(SCENARIO_DEFAULTS.replicaRps) },
        'startup-s': { type: 'string', default: String(SCENARIO_DEFAULTS.startupS) },
        'slo-s': { type: 'string', default: String(SCENARIO_DEFAULTS.sloS) },
        seed: { type: 'string', default: String(SCENARIO_DEFAULTS.seed) },
        json: { type: 'boolean', default: false },
        plot: { type: 'string' },
      },
    }));
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message.split('\n')[0] : String(err));
  }
  if (!values.trace) throw new UsageError(`--trace is required; ${USAGE}`);
  if (!values.strategy) throw new UsageError(`--strategy is required (one of ${SCALER_NAMES.join(', ')})`);
  if (!isScalerName(values.strategy)) throw new UsageError(`--strategy "${values.strategy}" is not one of ${SCALER_NAMES.join(', ')}`);
  const seed = number('--seed', values.seed);
  if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) throw new UsageError(`--seed must be a whole number in [0, 4294967295], got "${values.seed}"`);
  const startupS = number('--startup-s', values['startup-s']);
  if (startupS < 0) throw new UsageError(`--startup-s must not be negative, got "${values['startup-s']}"`);
  return {
    trace: values.trace,
    strategy: values.strategy,
    scale: values.scale === 'auto' ? 'auto' : positive('--scale', values.scale),
    replicaRps: positive('--replica-rps', values['replica-rps']),
    startupS,
    sloS: positive('--slo-s', values['slo-s']),
    seed,
    json: values.json,
    plot: values.plot ?? null,
  };
}

function number(flag: string, text: string): number {
  const x = Number(text);
  if (text.trim() === '' || !Number.isFinite(x)) throw new UsageError(`${flag} must be a number, got "${text}"`);
  return x;
}

function positive(flag: string, text: string): number {
  const x = number(flag, text);
  if (!(x > 0)) throw new UsageError(`${flag} must be above 0, got "${text}"`);
  return x;
}

/** Reads and parses a trace file; an unreadable or unknown file is a `UsageError`. */
export function loadTrace(path: string): Trace {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new UsageError(`cannot read trace ${path}: ${code}`);
  }
  try {
    return parseTrace(text);
  } catch (err) {
    if (err instanceof TraceFormatError) throw new UsageError(`trace ${path}: ${err.message}`);
    throw err;
  }
}
