import ipaddr from 'ipaddr.js';
import { ExpiringMap } from './expiring-map';

/**
 * Counts requests from one address that carried no token or a refused one, per minute, and answers how
 * long an address that spent its budget must wait. It runs before any signature check: a flood of forged
 * tokens from one address costs a lookup each once the budget is spent. IPv6 addresses count per /64
 * (one host usually holds the whole /64); IPv4-mapped IPv6 counts as the IPv4 address.
 */
const WINDOW_MS = 60_000;
/** Addresses tracked at most; the oldest windows are forgotten first. */
const MAX_ADDRESSES = 100_000;

export class AddressLimiter {
  private readonly windows = new ExpiringMap<string, { count: number; resetAt: number }>(MAX_ADDRESSES);

  constructor(private readonly perMinute: number) {}

  /** Seconds until this address may try again, or 0 when it still has budget. */
  blockedFor(address: string, now = Date.now()): number {
    const w = this.windows.get(keyOf(address), now);
    if (!w || w.count < this.perMinute) return 0;
    return Math.max(1, Math.ceil((w.resetAt - now) / 1000));
  }

  /** One more request without a valid token from this address. */
  failed(address: string, now = Date.now()): void {
    const key = keyOf(address);
    const w = this.windows.get(key, now);
    if (w) w.count++;
    else this.windows.set(key, { count: 1, resetAt: now + WINDOW_MS }, now + WINDOW_MS);
  }
}

export function keyOf(address: string): string {
  if (!address.includes(':')) return address;
  try {
    const ip = ipaddr.parse(address) as ipaddr.IPv6;
    if (ip.isIPv4MappedAddress()) return ip.toIPv4Address().toString();
    return `${ip.parts
      .slice(0, 4)
      .map((p) => p.toString(16))
      .join(':')}::/64`;
  } catch {
    return address;
  }
}
