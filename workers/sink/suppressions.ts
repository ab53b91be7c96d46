import type { DatabasePool } from 'slonik';
import { encodeSuppressions } from './convert';
import { ListFollower } from '../../lib/erasure-lists';
import { userKey } from '../../domain/play-ticks/rows';

/**
 * Users whose play-ticks must be dropped (GDPR erasure adds them). Held in memory and followed every
 * half second, so the hot path is a Set lookup. The sink reports in `list_holders` the version it holds:
 * the oldest version any batch still in hand was converted with (`holding`), so an erasure waits until no
 * tick of the user that slipped through an older list can still reach ClickHouse.
 */
export class SuppressionList {
  private shared: { version: number; buffer: SharedArrayBuffer } | undefined;
  /** Versions the batches in hand were converted with → how many batches. */
  private readonly inHand = new Map<number, number>();
  private readonly follower: ListFollower;

  constructor(pool: DatabasePool, pollMs = 500) {
    this.follower = new ListFollower(pool, {
      list: 'play_suppressions',
      role: 'sink',
      keyOf: userKey,
      pollMs,
      held: (loaded) => Math.min(loaded, ...this.inHand.keys()),
    });
  }

  get version(): number {
    return this.follower.version;
  }

  refresh(): Promise<void> {
    return this.follower.refresh();
  }

  /** A batch is converted with the current list: its version is held until `release`. */
  hold(): number {
    const v = this.follower.version;
    this.inHand.set(v, (this.inHand.get(v) ?? 0) + 1);
    return v;
  }

  release(version: number): void {
    const n = (this.inHand.get(version) ?? 1) - 1;
    if (n > 0) this.inHand.set(version, n);
    else this.inHand.delete(version);
  }

  /** The list as shared memory for the sink's threads; one per version. */
  snapshot(): SharedArrayBuffer {
    if (this.shared?.version !== this.follower.version) {
      this.shared = { version: this.follower.version, buffer: encodeSuppressions(this.follower.set) };
    }
    return this.shared.buffer;
  }

  /** The membership test for rows (by `userKey`), or null while the list is empty. */
  lookup(): ((key: string) => boolean) | null {
    const users = this.follower.set;
    return users.size ? (key) => users.has(key) : null;
  }

  start(): Promise<void> {
    return this.follower.start();
  }

  stop(): Promise<void> {
    return this.follower.stop();
  }
}
