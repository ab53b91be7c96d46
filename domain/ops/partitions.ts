/**
 * How long each time-partitioned table keeps its monthly partitions, and how far ahead they are made.
 * pg_partman's part_config is set from this table by the partition-maintenance job, so the policy lives
 * in code review, not in a console. A table partitioned later that is not listed gets the default:
 * partitions made ahead, nothing ever dropped (dropping data is a decision, not a default).
 */
export interface PartitionPolicy {
  /** Future monthly partitions kept ready. */
  premake: number;
  /** Partitions whose whole range is older than this are dropped (a PostgreSQL interval); null keeps all. */
  retention: string | null;
  why: string;
}

export const DEFAULT_PARTITION_POLICY: PartitionPolicy = {
  premake: 4,
  retention: null,
  why: 'not listed: made ahead, kept',
};

export const PARTITION_POLICIES: Readonly<Record<string, PartitionPolicy>> = {
  'public.session_logs': {
    premake: 4,
    retention: '6 months',
    why: 'account-sharing detection looks back 30 days; half a year for trends, no longer (data minimisation)',
  },
  'public.ad_impressions': {
    premake: 4,
    retention: '25 months',
    why: 'campaign reports compare a month with the same month of the year before, plus invoicing disputes',
  },
  'public.payment_transactions': {
    premake: 4,
    retention: null,
    why: 'financial records: kept for the statutory ten years, never dropped by a job',
  },
  'public.audit_log': { premake: 4, retention: null, why: 'append-only proof: kept' },
};

export const partitionPolicy = (parentTable: string): PartitionPolicy =>
  PARTITION_POLICIES[parentTable] ?? DEFAULT_PARTITION_POLICY;

/** Days of future partitions below which the runway alert fires (premake 4 months gives ~90–120). */
export const PARTITION_RUNWAY_ALERT_DAYS = 30;
