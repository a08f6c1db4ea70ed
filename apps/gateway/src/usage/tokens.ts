/** Injection token of the usage store (reads; the workers write). */
export const USAGE_STORE = Symbol('UsageStore');
