import { parseArgs } from 'node:util';
import { config } from '../lib/config';
import { SCALES, type ScaleName } from './seed/generate';
import { runSeed } from './seed/run';

const usage = `usage: npm run seed -- [--scale small|medium|large] [--plays N] [--seed S] [--now ISO] [--via kafka|clickhouse] [--if-empty] [--audio-tracks N]
  small sends its ticks through Kafka like production traffic (the sink loads them into ClickHouse);
  medium and large bulk-load ClickHouse directly. --if-empty does nothing when users exist.
  Every seeded track, album, artist and public playlist gets its search document; the N most played tracks
  (default 3) get real generated audio with their renditions, so playback works at once.`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      scale: { type: 'string', default: 'small' },
      plays: { type: 'string' },
      seed: { type: 'string', default: '42' },
      now: { type: 'string' },
      via: { type: 'string' },
      'if-empty': { type: 'boolean', default: false },
      'audio-tracks': { type: 'string', default: '3' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return void process.stdout.write(`${usage}\n`);
  if (!(values.scale in SCALES))
    throw new Error(`--scale must be one of ${Object.keys(SCALES).join(', ')}\n${usage}`);
  const scale = values.scale as ScaleName;
  const seed = Number(values.seed);
  const plays = values.plays === undefined ? undefined : Number(values.plays);
  if (!Number.isInteger(seed) || (plays !== undefined && !(Number.isInteger(plays) && plays >= 0)))
    throw new Error(`--seed and --plays take integers\n${usage}`);
  const now = values.now ? new Date(values.now) : new Date();
  if (Number.isNaN(now.getTime())) throw new Error('--now takes an ISO-8601 time');
  const via = values.via ?? (scale === 'small' ? 'kafka' : 'clickhouse');
  if (!/^\d{1,3}$/.test(values['audio-tracks'])) throw new Error(`--audio-tracks takes a number\n${usage}`);
  if (via !== 'kafka' && via !== 'clickhouse') throw new Error('--via takes kafka or clickhouse');

  const report = await runSeed(config(), {
    scale,
    seed,
    now,
    plays,
    via,
    ifEmpty: values['if-empty'],
    progress: true,
    billing: true,
    catalog: { audioTracks: Number(values['audio-tracks']) },
  });
  if (report.skipped)
    return void process.stdout.write('seed: the database already has users; left as it is\n');
  const d = report.data!;
  process.stdout.write(
    `seed: scale=${scale} seed=${seed} users=${d.users.length} artists=${d.artists.length} tracks=${d.tracks.length} ticks=${report.ticks} via=${via} subscriptions_adopted=${report.adoption?.started ?? 0} search-documents=${report.catalog?.documents ?? 0} tracks-with-audio=${report.catalog?.audioTracks.length ?? 0} seconds=${report.seconds.toFixed(1)}\n`,
  );
}

main().catch((err: Error) => {
  process.stderr.write(`seed failed: ${err.message}\n`);
  process.exit(1);
});
