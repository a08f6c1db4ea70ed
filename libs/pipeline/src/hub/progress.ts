import cliProgress from 'cli-progress';

/** `auto`: a bar when stderr is a terminal, else a log line per file. */
export type ProgressMode = 'auto' | 'bar' | 'log' | 'none';

export interface Progress {
  fileStarted(path: string, size: number | undefined, offset: number): void;
  advance(bytes: number): void;
  fileDone(path: string, size: number): void;
  stop(): void;
}

export function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${n} B`;
}

/**
 * Reports a pull of `totalBytes` (what is left to fetch). A bar in a terminal;
 * in pods, where stderr goes to a log collector, redrawn bars are noise, so
 * there it is one line when a file starts and one when it is done.
 */
export function createProgress(mode: ProgressMode, totalBytes: number, log: ((line: string) => void) | undefined): Progress {
  const chosen = mode === 'auto' ? (process.stderr.isTTY ? 'bar' : 'log') : mode;
  if (chosen === 'bar') return new BarProgress(totalBytes);
  if (chosen === 'log' && log) return new LogProgress(log);
  return { fileStarted: () => undefined, advance: () => undefined, fileDone: () => undefined, stop: () => undefined };
}

class LogProgress implements Progress {
  private started = 0;
  private fetched = 0;

  constructor(private readonly log: (line: string) => void) {}

  fileStarted(path: string, size: number | undefined, offset: number): void {
    this.started = performance.now();
    this.fetched = 0;
    const resume = offset > 0 ? `, resuming after ${formatBytes(offset)}` : '';
    this.log(`downloading ${path} (${size === undefined ? 'size unknown' : formatBytes(size)}${resume})`);
  }

  advance(bytes: number): void {
    this.fetched += bytes;
  }

  fileDone(path: string, size: number): void {
    const seconds = Math.max((performance.now() - this.started) / 1000, 1e-3);
    this.log(`downloaded ${path} (${formatBytes(size)} in ${seconds.toFixed(1)} s, ${formatBytes(this.fetched / seconds)}/s)`);
  }

  stop(): void {}
}

class BarProgress implements Progress {
  private readonly bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: '{file} [{bar}] {percentage}% | {done} / {size} | {rate}/s | ETA {eta_formatted}',
      hideCursor: true,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  private readonly began = performance.now();
  private value = 0;
  private fetched = 0;

  constructor(private readonly total: number) {
    this.bar.start(Math.max(total, 1), 0, this.payload(''));
  }

  fileStarted(path: string, _size: number | undefined, offset: number): void {
    this.value += offset;
    this.bar.update(this.value, this.payload(path));
  }

  advance(bytes: number): void {
    this.value += bytes;
    this.fetched += bytes;
    // A file whose size the hub did not state can make the total too small.
    if (this.value > this.total) this.bar.setTotal(this.value);
    this.bar.update(this.value, this.payload());
  }

  fileDone(): void {}

  stop(): void {
    this.bar.stop();
  }

  private payload(file?: string): Record<string, string> {
    const seconds = Math.max((performance.now() - this.began) / 1000, 1e-3);
    return {
      ...(file === undefined ? {} : { file }),
      done: formatBytes(this.value),
      size: formatBytes(this.total),
      rate: formatBytes(this.fetched / seconds),
    };
  }
}
