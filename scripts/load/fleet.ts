import http from 'node:http';
import https from 'node:https';
import type { PlayTick } from '../../domain/play-ticks/ticks';
import { FastRandom, Zipf } from '../seed/random';

/**
 * A fleet of players driving POST /v1/play-ticks as real clients would: each playing device sends a
 * tick every 5 s; plays pick Zipf-popular tracks; a quarter are skipped within 30 s. The fleet keeps
 * rate × 5 plays going, batches due ticks (≤ 500 per request, as a backend relaying its clients'
 * ticks does), and stops by itself after the duration. Loopback only: the URL is the caller's.
 */
export interface FleetOptions {
  url: string;
  token: string;
  /** Ticks per second across the fleet. */
  rate: number;
  durationS: number;
  /** Stop once this many ticks were sent, if that comes before the duration. */
  maxTicks?: number;
  users: number;
  tracks?: number;
  /** The tracks' IDs, most popular first (default: `tracks` random ones). */
  trackIds?: readonly string[];
  seed?: number;
  batch?: number;
  /** Requests in flight at once. */
  concurrency?: number;
  /** Called with each accepted tick, e.g. to measure tick-to-queryable latency. */
  onAccepted?: (ticks: PlayTick[]) => void;
  /** Keep every accepted event_id in the report (a fault test's ground truth; costs memory at scale). */
  collectIds?: boolean;
}

export interface FleetReport {
  sent: number;
  accepted: number;
  rejected: number;
  failedRequests: number;
  requests: number;
  seconds: number;
  latenciesMs: number[];
  /** Why requests failed: HTTP status or error message, with counts. */
  failures: Record<string, number>;
  /** Event IDs the API accepted, with `collectIds`: what must end up in ClickHouse. */
  acceptedIds: Set<string>;
}

interface Play {
  play_id: string;
  user_id: string;
  track_id: string;
  country: string;
  device_id: string;
  position: number;
  ticksLeft: number;
}

/** The wheel's slot: 100 slots of 50 ms make one 5 s turn, a play's tick interval. */
const SLOT_MS = 50;
const SLOTS = 5000 / SLOT_MS;

const COUNTRIES = ['US', 'GB', 'DE', 'BR', 'MX', 'FR', 'IN', 'JP', 'ES', 'IT', 'SE', 'PL'];

export async function runFleet(o: FleetOptions): Promise<FleetReport> {
  const r = new FastRandom(o.seed ?? 7);
  const users = Array.from({ length: o.users }, () => ({ id: r.uuid(), country: r.pick(COUNTRIES) }));
  const tracks = o.trackIds ?? Array.from({ length: o.tracks ?? 5000 }, () => r.uuid());
  const trackZipf = new Zipf(tracks.length);
  const batch = o.batch ?? 500;
  const concurrency = o.concurrency ?? 8;
  const report: FleetReport = {
    sent: 0,
    accepted: 0,
    rejected: 0,
    failedRequests: 0,
    requests: 0,
    seconds: 0,
    latenciesMs: [],
    failures: {},
    acceptedIds: new Set(),
  };
  const fail = (why: string) => {
    report.failedRequests++;
    report.failures[why] = (report.failures[why] ?? 0) + 1;
  };

  const start = Date.now();
  const end = start + o.durationS * 1000;
  const concurrentPlays = Math.max(1, Math.round(o.rate * 5));
  const newPlay = (i: number): Play => {
    const user = users[i % users.length]!;
    return {
      play_id: r.uuid(),
      user_id: user.id,
      track_id: tracks[trackZipf.sample(r)]!,
      country: user.country,
      device_id: `load-${i % 997}`,
      position: 0,
      ticksLeft: r.chance(0.25) ? r.int(1, 5) : r.int(6, 60),
    };
  };
  // A timing wheel: a play ticks every 5 s, so it keeps its slot of the wheel (one turn = 5 s) for
  // life, and a replacement takes the slot of the play it replaces. Each pass visits only the slots that
  // came due, not every play (at 100k ticks/s the fleet is half a million plays). The first ticks are
  // spread over the first turn so the rate is even from the start.
  const wheel: { play: Play; i: number }[][] = Array.from({ length: SLOTS }, () => []);
  for (let i = 0; i < concurrentPlays; i++) wheel[r.int(0, SLOTS - 1)]!.push({ play: newPlay(i), i });

  // node:http with keep-alive rather than fetch: fetch's web streams cost the fleet more CPU per request
  // than the API spent on it, on the machine both share.
  const target = new URL('/v1/play-ticks', o.url);
  const client = target.protocol === 'https:' ? https : http;
  const agent = new client.Agent({ keepAlive: true, maxSockets: concurrency });
  const post = (body: string) =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = client.request(
        target,
        {
          method: 'POST',
          agent,
          headers: {
            authorization: `Bearer ${o.token}`,
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
          );
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });

  let inFlight = 0;
  const pending = new Set<Promise<void>>();
  const send = async (ticks: PlayTick[]) => {
    inFlight++;
    const t0 = performance.now();
    try {
      const res = await post(JSON.stringify({ ticks }));
      report.requests++;
      report.latenciesMs.push(performance.now() - t0);
      if (res.status !== 202) {
        fail(`HTTP ${res.status}: ${res.text.slice(0, 120)}`);
        return;
      }
      const body = JSON.parse(res.text) as { accepted: number; rejected: { index: number }[] };
      const rejected = new Set(body.rejected.map((x) => x.index));
      const ok = rejected.size ? ticks.filter((_, i) => !rejected.has(i)) : ticks;
      report.accepted += body.accepted;
      report.rejected += body.rejected.length;
      if (o.collectIds) for (const t of ok) report.acceptedIds.add(t.event_id);
      o.onAccepted?.(ok);
    } catch (err) {
      fail((err as Error).message);
    } finally {
      inFlight--;
    }
  };
  const flush = async (due: PlayTick[]) => {
    report.sent += due.length;
    while (inFlight >= concurrency) await Promise.race(pending);
    const job = send(due).finally(() => pending.delete(job));
    pending.add(job);
  };

  const maxTicks = o.maxTicks ?? Number.POSITIVE_INFINITY;
  let turned = -1; // the last slot (counted from the start) whose plays ticked
  while (Date.now() < end && report.sent < maxTicks) {
    const now = Date.now();
    const eventTime = new Date(now).toISOString();
    let due: PlayTick[] = [];
    for (
      const upTo = Math.floor((now - start) / SLOT_MS);
      turned < upTo && report.sent + due.length < maxTicks;
    ) {
      const slot = wheel[++turned % SLOTS]!;
      for (const entry of slot) {
        const p = entry.play;
        p.position += 5000;
        due.push({
          event_id: r.uuid(),
          play_id: p.play_id,
          user_id: p.user_id,
          track_id: p.track_id,
          country: p.country,
          device_id: p.device_id,
          position_ms: p.position,
          event_time: eventTime,
        });
        if (--p.ticksLeft === 0) entry.play = newPlay(entry.i);
        if (report.sent + due.length >= maxTicks) break;
        if (due.length === batch) {
          await flush(due);
          due = [];
        }
      }
    }
    if (due.length) await flush(due);
    await new Promise((res) => setTimeout(res, SLOT_MS));
  }
  await Promise.all(pending);
  agent.destroy();
  report.seconds = (Date.now() - start) / 1000;
  return report;
}

export function percentile(values: number[], p: number): number {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
