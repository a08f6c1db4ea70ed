/**
 * A small seeded PRNG, so that a run is reproducible byte for byte on any
 * machine and Node version (Math.random cannot be seeded).
 *
 * xoshiro128** (Blackman and Vigna) seeded through splitmix32. Each part of
 * the simulation draws from its own stream (arrivals, service times, pod
 * start-ups), so that two strategies replayed with one seed see the same
 * arrivals and the same per-job service times: their differences come from
 * the scaling, not from the dice.
 */

/** Independent streams derived from one seed. */
export const RNG_STREAM = { arrivals: 1, service: 2, startup: 3 } as const;

export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  /** Marsaglia's polar method yields normals in pairs; the second waits here. */
  private spareNormal: number | null = null;

  /** `seed`: an integer in [0, 2^32); `stream`: which of the seed's independent streams. */
  constructor(seed: number, stream = 0) {
    let x = (seed >>> 0) ^ Math.imul(stream + 1, 0x9e3779b9);
    const next = (): number => {
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    // xoshiro must not start from the all-zero state.
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** Uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextUint32() / 4_294_967_296;
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** True with probability `p`. */
  bernoulli(p: number): boolean {
    return this.next() < p;
  }

  /** Standard normal (Marsaglia's polar method: no trigonometry, no log of 0). */
  normal(): number {
    const spare = this.spareNormal;
    if (spare !== null) {
      this.spareNormal = null;
      return spare;
    }
    for (;;) {
      const u = 2 * this.next() - 1;
      const v = 2 * this.next() - 1;
      const s = u * u + v * v;
      if (s > 0 && s < 1) {
        const f = Math.sqrt((-2 * Math.log(s)) / s);
        this.spareNormal = v * f;
        return u * f;
      }
    }
  }

  /** Gamma(shape, scale) for shape ≥ 1 (Marsaglia and Tsang, 2000): mean shape × scale. */
  gamma(shape: number, scale: number): number {
    if (!(shape >= 1)) throw new RangeError(`gamma shape must be at least 1, got ${shape}`);
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      let x: number;
      let v: number;
      do {
        x = this.normal();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = this.next();
      const x2 = x * x;
      // The squeeze accepts ~98 % of draws without a logarithm.
      if (u < 1 - 0.0331 * x2 * x2) return d * v * scale;
      if (Math.log(u) < 0.5 * x2 + d * (1 - v + Math.log(v))) return d * v * scale;
    }
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
