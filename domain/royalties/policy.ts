/**
 * A royalty policy version (table royalty_policies): the rules a run applies. Listened time is measured
 * in ticks — a client sends one every 5 s while a track plays — so every duration becomes a tick count.
 */
export const TICK_SECONDS = 5;

export interface Policy {
  policyVersion: number;
  minPlaySeconds: number;
  /** 0: no minimum. */
  minTrailingStreams: number;
  trailingMonths: number;
  botRule: 'none' | 'short-play-bursts';
  botShortPlaySeconds: number;
  botWindowSeconds: number;
  botMinShortPlays: number;
  rounding: 'largest-remainder';
}

/** A play is royalty-bearing from this many distinct ticks (30 s → 6: a 29.9 s play sent 5). */
export const minRoyaltyTicks = (p: Pick<Policy, 'minPlaySeconds'>): number =>
  Math.ceil(p.minPlaySeconds / TICK_SECONDS);

/** A play is "short" for the bot rule below this many ticks (15 s → under 3 ticks). */
export const shortPlayTicks = (p: Pick<Policy, 'botShortPlaySeconds'>): number =>
  Math.ceil(p.botShortPlaySeconds / TICK_SECONDS);
