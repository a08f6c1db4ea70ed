import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { leaseToken, type BatchRecord } from '@fastvlm/batches';
import { BATCH_CONTEXT } from './tokens';
import type { BatchContext } from './batch-context';
import { announce, close } from './batch-finish';
import { BatchFeeder } from './batch-feed';
import { validate } from './batch-validate';

/** Milliseconds between two sweeps of expired files. */
const SWEEP_EVERY_MS = 10_000;
/** Expired files deleted per sweep. */
const SWEEP_BATCH = 100;

/**
 * Each gateway runs batches: every tick it takes (or keeps) the lease of each
 * active batch it can, and moves each one it holds a step on, the batches side
 * by side (a long validation does not hold up the others). A batch is held by
 * one gateway at a time; when that one dies its lease lapses and another takes
 * over from what Redis says. The same loop sweeps expired files.
 */
@Injectable()
export class BatchRunner implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly token = leaseToken();
  private readonly feeder: BatchFeeder;
  /** Batches this gateway holds, with whether a step is running for it. */
  private readonly held = new Map<string, { busy: boolean }>();
  private timer: NodeJS.Timeout | null = null;
  private ticking = false;
  private lastSweep = 0;
  private stopped = false;

  constructor(@Inject(BATCH_CONTEXT) private readonly ctx: BatchContext) {
    this.feeder = new BatchFeeder(ctx);
  }

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => this.kick(), this.ctx.cfg.BATCH_TICK_MS);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    // Another gateway may take them at once instead of after the lease lapses.
    await Promise.all([...this.held.keys()].map((id) => this.ctx.store.unlease(id, this.token).catch(() => undefined)));
  }

  /** Runs a tick now (a new batch, a cancel) unless one is running. */
  kick(): void {
    if (this.ticking || this.stopped) return;
    this.ticking = true;
    this.tick()
      .catch((e: unknown) => this.ctx.log.warn({ err: (e as Error).message }, 'batch runner tick failed'))
      .finally(() => {
        this.ticking = false;
      });
  }

  private async tick(): Promise<void> {
    const ids = await this.ctx.store.active();
    for (const id of ids) {
      if (this.stopped) return;
      let h = this.held.get(id);
      // Renewed every tick, busy or not: a validation of 50 000 lines takes longer than a lease.
      if (!(await this.ctx.store.lease(id, this.token, this.ctx.cfg.BATCH_LEASE_MS))) {
        this.held.delete(id);
        continue;
      }
      if (!h) {
        h = { busy: false };
        this.held.set(id, h);
      }
      if (h.busy) continue;
      h.busy = true;
      const hold = h;
      void this.step(id)
        .catch((e: unknown) => this.ctx.log.warn({ err: (e as Error).message, batch: id }, 'batch step failed; retrying next tick'))
        .finally(() => {
          hold.busy = false;
        });
    }
    for (const id of this.held.keys()) if (!ids.includes(id)) this.held.delete(id);
    if (Date.now() - this.lastSweep >= SWEEP_EVERY_MS) {
      this.lastSweep = Date.now();
      await this.sweepFiles();
    }
  }

  private async step(id: string): Promise<void> {
    const b = await this.ctx.store.get(id);
    if (!b) {
      await this.ctx.store.deactivate(id);
      return;
    }
    const mine = () => !this.stopped && this.held.has(id);
    switch (b.status) {
      case 'validating':
        return Date.now() >= b.expiresAt ? this.expireUnvalidated(b) : validate(this.ctx, b, mine);
      case 'in_progress':
      case 'cancelling':
        return this.feeder.tick(b, mine);
      case 'finalizing':
        return this.feeder.finalize(b);
      case 'completed':
      case 'failed':
      case 'expired':
      case 'cancelled':
        await this.ctx.store.unlease(id, this.token);
        this.held.delete(id);
        return announce(this.ctx, b);
    }
  }

  private async expireUnvalidated(b: BatchRecord): Promise<void> {
    await close(this.ctx, b, ['validating'], 'expired');
    const done = await this.ctx.store.get(b.id);
    if (done) await announce(this.ctx, done);
  }

  /** Deletes files past their expiry: the record first (a reader then gets 404), then the bytes. */
  private async sweepFiles(): Promise<void> {
    for (const id of await this.ctx.files.expired(Date.now(), SWEEP_BATCH)) {
      const f = await this.ctx.files.get(id);
      if (!f) {
        await this.ctx.files.forgetExpiry(id);
        continue;
      }
      const parts = await this.ctx.files.remove(id, f.tenant);
      if (parts) {
        await Promise.all(parts.map((p) => this.ctx.blobs.delete(p.key)));
        this.ctx.log.info({ file: id, tenant: f.tenant }, 'expired file deleted');
      }
    }
  }
}
