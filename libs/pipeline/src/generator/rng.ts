/**
 * Seeded randomness for weights. Every tensor draws from its own stream, keyed by
 * (seed, tensor name), so adding or reordering tensors never shifts the values of
 * the others and a preset change only touches the weights it actually changes.
 */

const MASK32 = 0xffffffff;

/** splitmix32: spreads a weak seed (0, 1, 2…) over the whole state space. */
function splitmix32(state: number): [next: number, out: number] {
  const next = (state + 0x9e3779b9) >>> 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return [next, (z ^ (z >>> 16)) >>> 0];
}

function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** xoshiro128**: fast, 128-bit state, good enough statistics for weight init. */
export class Rng {
  private s = new Uint32Array(4);
  private spare: number | null = null;

  constructor(seed: number) {
    let state = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      const [next, out] = splitmix32(state);
      state = next;
      this.s[i] = out;
    }
  }

  /** An independent stream for one named tensor. */
  static forStream(seed: number, stream: string): Rng {
    return new Rng((Math.imul(seed >>> 0, 0x9e3779b1) ^ fnv1a32(stream)) & MASK32);
  }

  nextU32(): number {
    const s = this.s;
    const s0 = s[0] ?? 0;
    const s1 = s[1] ?? 0;
    const s2 = s[2] ?? 0;
    const s3 = s[3] ?? 0;
    const r = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = (s1 << 9) >>> 0;
    const n2 = (s2 ^ s0) >>> 0;
    const n3 = (s3 ^ s1) >>> 0;
    s[1] = (s1 ^ n2) >>> 0;
    s[0] = (s0 ^ n3) >>> 0;
    s[2] = (n2 ^ t) >>> 0;
    s[3] = rotl(n3, 11);
    return r;
  }

  /** Uniform in the open interval (0, 1), so log() below never sees 0. */
  uniform(): number {
    return (this.nextU32() + 0.5) / 4294967296;
  }

  /** Standard normal via Box–Muller (both outputs used). */
  normal(): number {
    if (this.spare !== null) {
      const v = this.spare;
      this.spare = null;
      return v;
    }
    const r = Math.sqrt(-2 * Math.log(this.uniform()));
    const theta = 2 * Math.PI * this.uniform();
    this.spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** Draws the named weight tensors of one model from one seed. */
export class WeightSource {
  constructor(private readonly seed: number) {}

  /** N(mean, std²) samples, rounded to float32. */
  normal(name: string, count: number, std: number, mean = 0): Float32Array {
    const rng = Rng.forStream(this.seed, name);
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = mean + std * rng.normal();
    return out;
  }

  /**
   * Integer samples round(N(0, scale²)) clipped to int8. Used for the large
   * vocabulary factors where 1 byte per value keeps the tiny model small.
   */
  int8Normal(name: string, count: number, scale: number): Int8Array {
    const rng = Rng.forStream(this.seed, name);
    const out = new Int8Array(count);
    for (let i = 0; i < count; i++) {
      out[i] = Math.max(-127, Math.min(127, Math.round(scale * rng.normal())));
    }
    return out;
  }
}
