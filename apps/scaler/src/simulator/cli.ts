/**
 * npm run scaler:simulate -- --trace FILE --strategy NAME [--scale X|auto] [--replica-rps R]
 *   [--startup-s S] [--slo-s T] [--seed N] [--json] [--plot out.svg]
 *
 * Replays a trace through one autoscaler and prints one row of figures (or one
 * JSON line). Bad flags or an unreadable trace: one line on stderr, exit code 2.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { AUTO_SCALE_PEAK_REPLICAS, peakMinuteRate } from './arrivals';
import { renderPlot } from './plot-svg';
import { jsonLine, runFigures, runTable } from './report';
import { UsageError, loadTrace, parseCli } from './cli-args';
import { runScenario } from './scenario';

function main(argv: readonly string[]): void {
  const o = parseCli(argv);
  const trace = loadTrace(o.trace);
  if (o.scale === 'auto' && peakMinuteRate(trace) <= 0) throw new UsageError(`trace ${o.trace} has no requests, so --scale auto has nothing to scale`);
  const name = basename(o.trace);
  const result = runScenario({ trace, scaler: o.strategy, scale: o.scale, replicaRps: o.replicaRps, startupS: o.startupS, sloS: o.sloS, seed: o.seed, timeline: o.plot !== null });
  const figures = runFigures(o.strategy, name, result);

  if (o.plot !== null && result.timeline) {
    try {
      mkdirSync(dirname(o.plot), { recursive: true });
      writeFileSync(o.plot, renderPlot(result.timeline, { trace: name, strategy: o.strategy, scale: result.scale, seed: o.seed, replicaRps: o.replicaRps, startupS: o.startupS, sloS: o.sloS }));
    } catch (err) {
      throw new UsageError(`cannot write plot ${o.plot}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }
  if (o.json) {
    console.log(jsonLine(figures));
    return;
  }
  const how =
    o.scale === 'auto'
      ? `auto: the peak minute, ${(peakMinuteRate(trace) * result.scale).toFixed(2)} requests/s after scaling, needs ${AUTO_SCALE_PEAK_REPLICAS} replicas at R = ${o.replicaRps}`
      : 'given';
  console.log(`scale factor ${result.scale.toPrecision(6)} (${how}); R = ${o.replicaRps} requests/s per replica, start-up ${o.startupS} s, SLO ${o.sloS} s, seed ${o.seed}`);
  console.log(runTable(figures, result.scale, o.seed));
  if (o.plot !== null) console.log(`plot: ${o.plot}`);
}

try {
  main(process.argv.slice(2));
} catch (err) {
  if (!(err instanceof UsageError)) throw err;
  console.error(`scaler:simulate: ${err.message}`);
  process.exitCode = 2;
}
