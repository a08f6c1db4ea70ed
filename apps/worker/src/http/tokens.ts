/** Injection tokens of the worker's HTTP app (explicit: no decorator metadata is emitted). */
export const WORKER_STATUS = Symbol('WorkerStatus');
export const WORKER_METRICS = Symbol('WorkerMetrics');
