import { Faker, en } from '@faker-js/faker';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import type { RandomGenerator } from 'pure-rand/types/RandomGenerator';

/** What the generators need from a seeded random source. */
export interface Rng {
  next(): number;
  int(min: number, max: number): number;
  chance(p: number): boolean;
  pick<T>(items: readonly T[]): T;
  uuid(): string;
}

/** A seeded random source with faker's names and titles: same seed, same sequence. For entities. */
export class Random implements Rng {
  readonly faker: Faker;
  constructor(seed: number) {
    this.faker = new Faker({ locale: [en] });
    this.faker.seed(seed);
  }
  /** Uniform in [0, 1). */
  next(): number {
    return this.faker.number.float({ min: 0, max: 1, fractionDigits: 12 }) % 1;
  }
  int(min: number, max: number): number {
    return this.faker.number.int({ min, max });
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)] as T;
  }
  uuid(): string {
    return this.faker.string.uuid();
  }
}

/**
 * A fast seeded source (xoroshiro128+ from pure-rand) for the millions of play-ticks, where faker's
 * generator would dominate the load time. Same seed, same sequence.
 */
export class FastRandom implements Rng {
  private readonly rng: RandomGenerator;
  constructor(seed: number) {
    this.rng = xoroshiro128plus(seed);
  }
  private u32(): number {
    return this.rng.next() >>> 0;
  }
  next(): number {
    return this.u32() / 4294967296;
  }
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)] as T;
  }
  /**
   * A version-4 UUID from 122 random bits, written as characters into a buffer: one flat string, not a
   * concatenation of pieces (which JSON.stringify and every hash of it would first have to flatten).
   */
  uuid(): string {
    const a = this.rng.next() >>> 0;
    const b = this.rng.next() >>> 0;
    const c = this.rng.next() >>> 0;
    const d = this.rng.next() >>> 0;
    const o = this.text;
    hex(o, 0, a, 8);
    hex(o, 9, b >>> 16, 4);
    hex(o, 15, b & 0xfff, 3);
    o[19] = VARIANT[c >>> 30]!;
    hex(o, 20, (c >>> 16) & 0xfff, 3);
    hex(o, 24, c & 0xffff, 4);
    hex(o, 28, d, 8);
    return o.toString('latin1', 0, 36);
  }
  private readonly text = Buffer.from('00000000-0000-4000-8000-000000000000', 'latin1');
}

const DIGITS = Buffer.from('0123456789abcdef', 'latin1');
const VARIANT = Buffer.from('89ab', 'latin1');
/** Writes the low `n` hex digits of `v` at `o`, most significant first. */
function hex(b: Buffer, o: number, v: number, n: number): void {
  for (let i = n - 1; i >= 0; i--, v >>>= 4) b[o + i] = DIGITS[v & 15]!;
}

/** Samples 0..n-1 with P(k) ∝ 1/(k+1)^s: popularity that follows Zipf's law. */
export class Zipf {
  private readonly cdf: Float64Array;
  constructor(n: number, s = 1.07) {
    this.cdf = new Float64Array(n);
    let total = 0;
    for (let k = 0; k < n; k++) this.cdf[k] = total += 1 / Math.pow(k + 1, s);
    for (let k = 0; k < n; k++) this.cdf[k] = (this.cdf[k] as number) / total;
  }
  sample(rnd: Rng): number {
    const u = rnd.next();
    let lo = 0;
    let hi = this.cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.cdf[mid] as number) < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** Picks from weighted options. */
export class Weighted<T> {
  private readonly cdf: number[] = [];
  constructor(private readonly items: readonly (readonly [T, number])[]) {
    let total = 0;
    for (const [, w] of items) this.cdf.push((total += w));
    this.cdf = this.cdf.map((c) => c / total);
  }
  sample(rnd: Rng): T {
    const u = rnd.next();
    const i = this.cdf.findIndex((c) => u < c);
    return (this.items[i === -1 ? this.items.length - 1 : i] as readonly [T, number])[0];
  }
}
