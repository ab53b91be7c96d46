import { createHash } from 'node:crypto';
import { ConfigResourceTypes, type Kafka } from 'kafkajs';
import type { Client } from 'minio';
import type { DatabasePool } from 'slonik';
import { recordAudit } from '../../lib/audit';
import { bucketName } from '../../lib/clients/minio';
import type { Counts, StoreOutcome } from '../../workflows/compliance/contract';
import { auditActor, storeStatus, storeWorking } from './requests';

/**
 * Steps 7 and 10 of an erasure. Kafka cannot delete one person's records: the topics keep everything
 * for their retention, and the sinks drop the person's ticks meanwhile — the proof states both. The
 * certificate is a JSON proof without personal data (the user only as a salted hash), written once to the
 * write-once `compliance` bucket; its SHA-256 goes into the audit log.
 */

export const certificateKey = (requestId: string) => `gdpr/erasure/${requestId}.json`;
/** The user as the proof names them: enough to confirm a given ID, never to recover one. */
export const userIdHash = (userId: string) =>
  createHash('sha256').update(`cadenza-gdpr-user:${userId.toLowerCase()}`).digest('hex');
export const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

export interface KafkaRetention {
  topics: Record<string, { retentionMs: number }>;
  /** Until when the person's ticks may still be in the topics (receipt + the longest retention). */
  retainedUntil: string;
}

export interface CertificateInput {
  requestId: string;
  workflowId: string;
  userId: string;
  reason: string;
  receivedAt: number;
  dueAt: number;
  /** The workflow's clock when all stores verified clean. */
  completedAt: number;
  escalated: boolean;
  stores: StoreOutcome[];
  kafka: KafkaRetention;
  codeVersion: string;
}

/** The certificate's bytes: deterministic for its input, so a retried write is the same object. */
export function certificateJson(c: CertificateInput): string {
  const doc = {
    kind: 'cadenza.gdpr.erasure-certificate',
    version: 1,
    requestId: c.requestId,
    workflowId: c.workflowId,
    userIdSha256: userIdHash(c.userId),
    legalBasis: 'GDPR Art. 17',
    reason: c.reason,
    receivedAt: new Date(c.receivedAt).toISOString(),
    dueAt: new Date(c.dueAt).toISOString(),
    completedAt: new Date(c.completedAt).toISOString(),
    escalated: c.escalated,
    codeVersion: c.codeVersion,
    stores: c.stores.map((s) => ({
      store: s.store,
      found: sortCounts(s.found),
      rounds: s.rounds,
      verifiedAt: s.verifiedAt,
      verification: s.method,
      ...(s.note ? { note: s.note } : {}),
    })),
    kafka: {
      topics: c.kafka.topics,
      retainedUntil: c.kafka.retainedUntil,
      note:
        'Kafka keeps every record for the topic retention; the person may appear in play-ticks until ' +
        'retainedUntil. Every sink drops their ticks (play_suppressions) and held the entry before any ' +
        'store was erased, so none reaches ClickHouse.',
    },
    temporal:
      'Workflow inputs, results, queries and search attributes carry IDs only (DESIGN §2); histories hold no name or e-mail.',
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

const sortCounts = (c: Counts): Counts =>
  Object.fromEntries(Object.entries(c).sort(([a], [b]) => a.localeCompare(b)));

export function createCertificateActivities(deps: {
  pool: DatabasePool;
  minio: Client;
  kafka: Kafka;
  bucketPrefix: string;
  topics: { ticks: string; dlq: string };
  codeVersion: string;
}) {
  const { pool, minio, kafka } = deps;
  const bucket = bucketName('compliance', deps.bucketPrefix);

  return {
    /** The retention of the topics that carry play-ticks, read from the brokers. */
    async kafkaRetention(i: { requestId: string; receivedAt: number }): Promise<KafkaRetention> {
      await storeWorking(pool, i.requestId, 'kafka', null);
      const admin = kafka.admin();
      await admin.connect();
      try {
        const names = [deps.topics.ticks, deps.topics.dlq];
        const described = await admin.describeConfigs({
          includeSynonyms: false,
          resources: names.map((name) => ({
            type: ConfigResourceTypes.TOPIC,
            name,
            configNames: ['retention.ms'],
          })),
        });
        const topics: KafkaRetention['topics'] = {};
        for (const r of described.resources) {
          const value = r.configEntries.find((e) => e.configName === 'retention.ms')?.configValue;
          topics[r.resourceName] = { retentionMs: Number(value ?? -1) };
        }
        const longest = Math.max(...Object.values(topics).map((t) => t.retentionMs));
        await storeStatus(pool, i.requestId, 'kafka', 'done');
        return {
          topics,
          retainedUntil: longest < 0 ? 'forever' : new Date(i.receivedAt + longest).toISOString(),
        };
      } finally {
        await admin.disconnect();
      }
    },

    /**
     * Writes the certificate once (a retry finds it and answers with the bytes stored), then its SHA-256
     * into the audit log.
     */
    async writeCertificate(
      c: Omit<CertificateInput, 'codeVersion'>,
    ): Promise<{ key: string; sha256: string }> {
      const key = certificateKey(c.requestId);
      let body: Buffer;
      const stored = await minio.statObject(bucket, key).then(
        () => true,
        () => false,
      );
      if (stored) {
        const chunks: Buffer[] = [];
        for await (const chunk of await minio.getObject(bucket, key)) chunks.push(chunk as Buffer);
        body = Buffer.concat(chunks);
      } else {
        body = Buffer.from(certificateJson({ ...c, codeVersion: deps.codeVersion }), 'utf8');
        await minio.putObject(bucket, key, body, body.length, { 'Content-Type': 'application/json' });
      }
      const digest = sha256(body);
      await recordAudit(pool, {
        actor: auditActor(c.workflowId),
        action: 'gdpr.erasure.certificate',
        subjectType: 'gdpr_request',
        subjectId: c.requestId,
        entryKey: `gdpr:${c.requestId}:certificate`,
        details: { bucket, key, sha256: digest, bytes: body.length },
      });
      return { key, sha256: digest };
    },
  };
}
