import type { ForecastView } from '../types';

const MINUTES_PER_DAY = 1_440;
const DAYS_PER_WEEK = 7;

/** Smoothing of the multiplicative double-seasonal Holt-Winters model (per minute of arrivals). */
export const FORECAST = {
  /** Minutes per bin of the daily profile: 96 bins a day, each fitted from 15 minutes of every day (a per-minute profile is mostly noise). */
  binMinutes: 15,
  /** Level smoothing per minute: the deseasonalised rate of roughly the last ten minutes, what forecasts start from. */
  alpha: 0.1,
  /**
   * Smoothing per minute of the slow level (about a day's memory), which the seasons are learnt against:
   * a ten-minute level would follow the daily and weekly swings itself and leave the seasons nothing to learn.
   */
  alphaSlow: 1 / 1_440,
  /** Daily-profile smoothing per observation (each bin sees 15 a day): about a week's memory. */
  gammaDaily: 0.01,
  /** Day-of-week smoothing per observation (1 440 a day): a whole day of surprise moves it about half the way. */
  gammaWeekly: 0.000_5,
  /** One minute's surprise moves the seasonal factors by at most this ratio either way, so a burst does not become a season. */
  clip: 3,
  /** Mean arrivals per minute below which the profile is not learnt (ratios of tiny counts are noise). */
  minLevel: 0.5,
} as const;

const BINS = MINUTES_PER_DAY / FORECAST.binMinutes;

/**
 * State of the arrival forecast: a multiplicative Holt-Winters model with two
 * seasonalities (Taylor's double-seasonal form, without trend: the seasons carry
 * the daily rise and fall): a level, a daily profile and a day-of-week factor.
 * `y(m) ≈ level × daily(minute of day) × weekly(day of week)`.
 *
 * Plain JSON, so that the scaler keeps it in Redis and every replica reads the
 * same model; `foldMinute` is pure, so the simulator fits the same model by
 * folding the same minutes.
 */
export interface ForecastState {
  version: 1;
  /** Minutes folded (gaps in the history are skipped, not counted). */
  minutesSeen: number;
  /** Last epoch minute folded; -1 before any. */
  lastMinute: number;
  /** Deseasonalised arrivals per minute, recent (what forecasts scale the seasons by). */
  level: number;
  /** Deseasonalised arrivals per minute over about a day (what the seasons are learnt against). */
  slowLevel: number;
  /** `BINS` factors of the time of day, mean 1 once initialised. */
  daily: number[];
  /** 7 factors of the day of week (epoch days modulo 7), mean 1. */
  weekly: number[];
  /** First-day sums per bin, to initialise the daily profile; null once initialised. */
  warmup: { sum: number[]; count: number[] } | null;
}

export function emptyForecast(): ForecastState {
  return {
    version: 1,
    minutesSeen: 0,
    lastMinute: -1,
    level: 0,
    slowLevel: 0,
    daily: new Array<number>(BINS).fill(1),
    weekly: new Array<number>(DAYS_PER_WEEK).fill(1),
    warmup: { sum: new Array<number>(BINS).fill(0), count: new Array<number>(BINS).fill(0) },
  };
}

const binOf = (minute: number): number => Math.floor((((minute % MINUTES_PER_DAY) + MINUTES_PER_DAY) % MINUTES_PER_DAY) / FORECAST.binMinutes);
const dayOf = (minute: number): number => ((Math.floor(minute / MINUTES_PER_DAY) % DAYS_PER_WEEK) + DAYS_PER_WEEK) % DAYS_PER_WEEK;
const clipRatio = (r: number): number => Math.min(FORECAST.clip, Math.max(1 / FORECAST.clip, r));

/** The daily factor at a minute, interpolated linearly between bin centres (the profile is smooth, the bins are not). */
function dailyAt(daily: readonly number[], minute: number): number {
  const pos = (((minute % MINUTES_PER_DAY) + MINUTES_PER_DAY) % MINUTES_PER_DAY) / FORECAST.binMinutes - 0.5;
  const lo = Math.floor(pos);
  const frac = pos - lo;
  const a = daily[(lo + BINS) % BINS] as number;
  const b = daily[(lo + 1) % BINS] as number;
  return a + (b - a) * frac;
}

/**
 * Folds one minute's arrivals into the model; returns a new state. Minutes at or
 * before `lastMinute` are ignored (a replay), and a jump past a gap just moves on.
 */
export function foldMinute(state: ForecastState, minute: number, arrivals: number): ForecastState {
  if (minute <= state.lastMinute || !Number.isFinite(arrivals) || arrivals < 0) return state;
  const s: ForecastState = {
    ...state,
    daily: [...state.daily],
    weekly: [...state.weekly],
    warmup: state.warmup ? { sum: [...state.warmup.sum], count: [...state.warmup.count] } : null,
    minutesSeen: state.minutesSeen + 1,
    lastMinute: minute,
  };
  const bin = binOf(minute);
  const day = dayOf(minute);
  if (s.warmup) {
    s.warmup.sum[bin] = (s.warmup.sum[bin] as number) + arrivals;
    s.warmup.count[bin] = (s.warmup.count[bin] as number) + 1;
    s.level = s.minutesSeen === 1 ? arrivals : FORECAST.alpha * arrivals + (1 - FORECAST.alpha) * s.level;
    if (s.minutesSeen >= MINUTES_PER_DAY) initialiseDaily(s);
    return s;
  }
  const d = s.daily[bin] as number;
  const wk = s.weekly[day] as number;
  const seasonal = Math.max(1e-6, d * wk);
  const slow = s.slowLevel;
  s.level = FORECAST.alpha * (arrivals / seasonal) + (1 - FORECAST.alpha) * s.level;
  if (slow >= FORECAST.minLevel) {
    const r = clipRatio(arrivals / (slow * seasonal));
    s.daily[bin] = d * (1 + FORECAST.gammaDaily * (r - 1));
    s.weekly[day] = wk * (1 + FORECAST.gammaWeekly * (r - 1));
    s.slowLevel = slow * (1 + FORECAST.alphaSlow * (r - 1));
  } else {
    s.slowLevel = FORECAST.alphaSlow * (arrivals / seasonal) + (1 - FORECAST.alphaSlow) * slow;
  }
  // Keep each season's mean at 1, so that the level alone carries the scale.
  if (minute % MINUTES_PER_DAY === 0) normalise(s.daily);
  if (minute % (MINUTES_PER_DAY * DAYS_PER_WEEK) === 0) normalise(s.weekly);
  return s;
}

function initialiseDaily(s: ForecastState): void {
  const w = s.warmup;
  if (!w) return;
  const means = w.sum.map((sum, b) => ((w.count[b] as number) > 0 ? sum / (w.count[b] as number) : 0));
  const overall = means.reduce((a, b) => a + b, 0) / BINS;
  s.daily = overall > 0 ? means.map((m) => Math.max(0.05, m / overall)) : new Array<number>(BINS).fill(1);
  normalise(s.daily);
  // The level so far tracked raw arrivals: express it without the season it was measured in.
  s.level = s.level / Math.max(1e-6, s.daily[binOf(s.lastMinute)] as number);
  s.slowLevel = overall;
  s.warmup = null;
}

function normalise(xs: number[]): void {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  if (mean <= 0) return;
  for (let i = 0; i < xs.length; i++) xs[i] = (xs[i] as number) / mean;
}

/** The model as strategies read it. */
export function forecastView(state: ForecastState): ForecastView {
  return {
    minutesSeen: state.minutesSeen,
    seasonMinutes: MINUTES_PER_DAY,
    lastMinute: state.lastMinute,
    ratePerSecond: (minute: number) => {
      if (state.warmup) return state.level / 60;
      const here = dailyAt(state.daily, minute) * (state.weekly[dayOf(minute)] as number);
      return Math.max(0, (state.level * here) / 60);
    },
  };
}

/** Folds a run of minutes (oldest first); what the scaler does with the minutes it has not folded yet. */
export function foldMinutes(state: ForecastState, minutes: readonly { minute: number; arrivals: number }[]): ForecastState {
  let s = state;
  for (const m of minutes) s = foldMinute(s, m.minute, m.arrivals);
  return s;
}
