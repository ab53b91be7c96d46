import { Faker, en } from '@faker-js/faker';

/** A seeded random source: same seed, same sequence (faker's Mersenne Twister under the hood). */
export class Random {
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

/** Samples 0..n-1 with P(k) ∝ 1/(k+1)^s: popularity that follows Zipf's law. */
export class Zipf {
  private readonly cdf: Float64Array;
  constructor(n: number, s = 1.07) {
    this.cdf = new Float64Array(n);
    let total = 0;
    for (let k = 0; k < n; k++) this.cdf[k] = total += 1 / Math.pow(k + 1, s);
    for (let k = 0; k < n; k++) this.cdf[k] = (this.cdf[k] as number) / total;
  }
  sample(rnd: Random): number {
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
  sample(rnd: Random): T {
    const u = rnd.next();
    const i = this.cdf.findIndex((c) => u < c);
    return (this.items[i === -1 ? this.items.length - 1 : i] as readonly [T, number])[0];
  }
}
