import { createKafka } from '../../lib/clients/kafka';
import { BUCKETS, createMinio } from '../../lib/clients/minio';
import { createOpenSearch, SEARCH_INDICES, SEARCH_VERSION } from '../../lib/clients/opensearch';
import { migrateKafka } from '../../sql/migrate/kafka';
import { migrateMinio } from '../../sql/migrate/minio';
import { migrateOpenSearch } from '../../sql/migrate/opensearch';
import { testConfig } from '../helpers/env';

/** OpenSearch, MinIO and Kafka as `npm run migrate` leaves them (re-run here: it must be a no-op). */
const cfg = testConfig();

describe('OpenSearch indices', () => {
  const os = createOpenSearch(cfg.opensearch);
  afterAll(() => os.close());

  it('puts versioned templates and points each alias at its current version; a re-run changes nothing', async () => {
    await migrateOpenSearch(os);
    expect(await migrateOpenSearch(os)).toEqual([]);
    for (const name of SEARCH_INDICES) {
      const { body } = await os.indices.getAlias({ name });
      expect(Object.keys(body)).toEqual([`${name}-v${SEARCH_VERSION}`]);
    }
  });

  it('finds tracks by prefix and despite a typo, and ranks by play count', async () => {
    const index = `tracks-v${SEARCH_VERSION}-probe`;
    await os.indices.create({ index }); // shaped by the current version's template
    try {
      const doc = (id: string, title: string, play_count: number) =>
        os.index({
          index,
          id,
          body: {
            track_id: id,
            title,
            artist_name: 'Probe',
            play_count,
            release_date: '2024-01-01',
            status: 'available',
          },
        });
      await doc('t1', 'Midnight Serenade', 10);
      await doc('t2', 'Midnight Sun', 5000);
      await doc('t3', 'Morning Dew', 99);
      await os.indices.refresh({ index });
      const search = async (query: object) =>
        (await os.search({ index, body: { query } })).body.hits.hits.map((h) => h._id);
      expect(await search({ match: { 'title.autocomplete': 'midn' } })).toEqual(
        expect.arrayContaining(['t1', 't2']),
      );
      expect(await search({ match: { title: { query: 'serenad', fuzziness: 'AUTO' } } })).toEqual(['t1']);
      const ranked = await search({
        function_score: {
          query: { match: { 'title.autocomplete': 'mid' } },
          field_value_factor: { field: 'play_count', modifier: 'log1p', missing: 1 },
          boost_mode: 'multiply',
        },
      });
      expect(ranked[0]).toBe('t2');
      const mapping = (await os.indices.getMapping({ index })).body[index]?.mappings.properties;
      expect(mapping?.release_date?.type).toBe('date');
      expect(mapping?.play_count?.type).toBe('long');
    } finally {
      await os.indices.delete({ index });
    }
  });
});

describe('MinIO buckets', () => {
  const minio = createMinio(cfg.minio);

  it('has every bucket, none of them public', async () => {
    await migrateMinio(minio);
    expect(await migrateMinio(minio)).toEqual([]);
    for (const bucket of BUCKETS) {
      expect(await minio.bucketExists(bucket)).toBe(true);
      const anonymous = await fetch(`http://${cfg.minio.endPoint}:${cfg.minio.port}/${bucket}/`);
      expect([bucket, anonymous.status]).toEqual([bucket, 403]);
    }
  });

  it('keeps compliance objects write-once and expires staging uploads', async () => {
    const key = `probe/${Date.now()}.json`;
    await minio.putObject('compliance', key, Buffer.from('{"proof":true}'));
    const { versionId } = await minio.statObject('compliance', key);
    await expect(
      minio.removeObject('compliance', key, { versionId: versionId ?? undefined }),
    ).rejects.toThrow(/WORM|retention|locked/i);
    const lock = await minio.getObjectLockConfig('compliance');
    expect(lock).toMatchObject({ objectLockEnabled: 'Enabled', mode: 'COMPLIANCE' });
    const lifecycle = await minio.getBucketLifecycle('staging');
    expect(JSON.stringify(lifecycle)).toMatch(/Expiration/);
  });
});

describe('Kafka topics', () => {
  it('has play-ticks with several partitions and its DLQ; a re-run creates nothing', async () => {
    const kafka = createKafka(cfg.kafka, 'topic-probe');
    expect(await migrateKafka(kafka, cfg.kafka)).toEqual([]);
    const admin = kafka.admin();
    await admin.connect();
    try {
      const meta = await admin.fetchTopicMetadata({
        topics: [cfg.kafka.topics.ticks, cfg.kafka.topics.dlq],
      });
      const partitions = Object.fromEntries(meta.topics.map((t) => [t.name, t.partitions.length]));
      expect(partitions).toEqual({ 'play-ticks': cfg.kafka.ticksPartitions, 'play-ticks.dlq': 1 });
      expect(cfg.kafka.ticksPartitions).toBeGreaterThan(1);
    } finally {
      await admin.disconnect();
    }
  });
});
