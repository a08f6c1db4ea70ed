/** Where a worker process is in its life; readiness is `ready` with Redis answering. */
export type WorkerPhase = 'loading' | 'ready' | 'draining';

/** Shared by the job loop (which moves it) and the HTTP probes (which read it). */
export class WorkerStatus {
  phase: WorkerPhase = 'loading';
  /** Set once the worker has its Redis connection; resolves when Redis answers. */
  pingRedis: (() => Promise<unknown>) | null = null;
  /** Set while the last periodic check found the queue Redis unsafe (it may evict); readiness is false meanwhile. */
  redisProblem: string | null = null;
}
