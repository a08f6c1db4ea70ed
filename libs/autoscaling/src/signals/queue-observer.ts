import type { ForecastState } from '../forecast/seasonal-forecast';
import { HISTORY_SECONDS } from '../types';
import type { ForecastStore } from './forecast-store';
import type { RecordedSample } from './layout';
import { closedMinutes, type SampleRecorder } from './sample-recorder';
import type { SignalReader } from './signal-reader';

/** Everything a decision about one queue reads, as of one moment. */
export interface QueueObservation {
  /** Epoch ms of the reading. */
  at: number;
  /** The live reading, also the last sample of `history`. */
  sample: RecordedSample;
  /**
   * The recorded samples of the HISTORY_SECONDS before this second, oldest first, then the live
   * reading as "now" (whichever replica recorded this second, a decision sees the freshest reading).
   */
  history: RecordedSample[];
  /** Recent worker start-up times (seconds), newest first. */
  startupSeconds: number[];
  /** The shared arrival model; null before any minute was recorded. */
  forecast: ForecastState | null;
}

/**
 * One observation of a queue: reads the live signals, the recorded history and
 * the forecast at once (their commands leave together on one connection),
 * records the reading as this second's sample, rolls closed minutes up into
 * the `minutes` stream and folds them into the forecast. Every step is safe
 * with other replicas doing the same: writes are first-wins by id, or
 * compare-and-set.
 */
export class QueueObserver {
  constructor(
    private readonly reader: SignalReader,
    private readonly recorder: SampleRecorder,
    private readonly forecasts: ForecastStore,
  ) {}

  async observe(queue: string, nowMs: number): Promise<QueueObservation> {
    const t = Math.floor(nowMs / 1000);
    const [live, recorded, stored, lastMinute] = await Promise.all([
      this.reader.read(queue, nowMs),
      this.recorder.history(queue, t - HISTORY_SECONDS, t - 1),
      this.forecasts.read(queue),
      this.recorder.lastMinute(queue),
    ]);
    await this.recorder.record(queue, live.sample);
    const history = [...recorded, live.sample];
    const minutes = closedMinutes(history, lastMinute, t);
    if (minutes.length > 0) await this.recorder.appendMinutes(queue, minutes);
    const newest = Math.max(lastMinute ?? -Infinity, minutes.at(-1)?.minute ?? -Infinity);
    let forecast = stored;
    // Once a minute at most: only a minute the model has not seen calls for a fold.
    if (Number.isFinite(newest) && (forecast === null || forecast.lastMinute < newest)) forecast = (await this.forecasts.fold(queue)).state;
    return { at: nowMs, sample: live.sample, history, startupSeconds: live.startupSeconds, forecast };
  }
}
