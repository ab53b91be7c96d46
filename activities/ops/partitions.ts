import { heartbeat } from '@temporalio/activity';
import { sql, type CommonQueryMethods, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { partitionPolicy } from '../../domain/ops/partitions';
import type { PartitionMaintenanceResult } from '../../workflows/ops/contract';

/**
 * pg_partman maintenance for every table it partitions (partman.part_config): each table's policy
 * (domain/ops/partitions.ts) is written to part_config, then `run_maintenance` makes the partitions ahead
 * and drops the ones past retention. The same SQL runs on pg_partman 4.7 (PostgreSQL 15, Debian) and 5.x
 * (PostgreSQL 16, compose): named arguments both versions share. Idempotent: a second run changes nothing.
 */

const Parent = z.object({ parent_table: z.string(), partition_interval: z.string() });
const Child = z.object({ name: z.string() });
const Runway = z.object({ parent_table: z.string(), runway_days: z.number().nullable() });

/** Days from now to the end of each partitioned table's last partition (null: it has none). */
export async function partitionRunway(db: CommonQueryMethods) {
  return db.any(sql.type(Runway)`
    SELECT c.parent_table,
      (SELECT extract(epoch FROM i.child_end_time - now())::float8 / 86400
       FROM partman.show_partitions(c.parent_table, 'DESC') p
       CROSS JOIN LATERAL partman.show_partition_info(p.partition_schemaname || '.' || p.partition_tablename,
         c.partition_interval, c.parent_table) i
       LIMIT 1) AS runway_days
    FROM partman.part_config c
    ORDER BY c.parent_table`);
}

const children = (db: CommonQueryMethods, parent: string) =>
  db.anyFirst(sql.type(Child)`
    SELECT p.partition_schemaname || '.' || p.partition_tablename AS name
    FROM partman.show_partitions(${parent}) p`);

export function createPartitionActivities(deps: { pool: DatabasePool }) {
  const { pool } = deps;
  return {
    async maintainPartitions(): Promise<PartitionMaintenanceResult> {
      const parents = await pool.any(
        sql.type(
          Parent,
        )`SELECT parent_table, partition_interval FROM partman.part_config ORDER BY parent_table`,
      );
      const tables: PartitionMaintenanceResult['tables'] = [];
      const failures: string[] = [];
      for (const { parent_table: table } of parents) {
        heartbeat({ table });
        const policy = partitionPolicy(table);
        try {
          // Each table in its own transaction: one table's trouble does not hold back the others.
          await pool.transaction(async (tx) => {
            await tx.query(sql.unsafe`
              UPDATE partman.part_config
              SET premake = ${policy.premake}, retention = ${policy.retention},
                  retention_keep_table = false, infinite_time_partitions = true
              WHERE parent_table = ${table}
                AND (premake IS DISTINCT FROM ${policy.premake} OR retention IS DISTINCT FROM ${policy.retention}
                     OR retention_keep_table OR NOT infinite_time_partitions)`);
            const before = new Set(await children(tx, table));
            await tx.query(
              sql.unsafe`SELECT partman.run_maintenance(p_parent_table => ${table}, p_analyze => false, p_jobmon => false)`,
            );
            const after = new Set(await children(tx, table));
            tables.push({
              table,
              partitionsCreated: [...after].filter((c) => !before.has(c)).length,
              partitionsDropped: [...before].filter((c) => !after.has(c)).length,
              runwayDays: 0,
            });
          });
        } catch (err) {
          failures.push(`${table}: ${(err as Error).message}`);
        }
      }
      // Housekeeping beside the partitions: the jobs' run records of past weeks (the dimension refresh alone
      // writes 288 a day); failed runs are kept a year, for the record.
      await pool.query(sql.unsafe`
        DELETE FROM ops_job_runs
        WHERE (status = 'succeeded' AND started_at < now() - interval '35 days')
           OR (status = 'failed' AND started_at < now() - interval '1 year')`);
      const runway = new Map((await partitionRunway(pool)).map((r) => [r.parent_table, r.runway_days]));
      for (const t of tables) t.runwayDays = Math.floor(runway.get(t.table) ?? 0);
      // Retried whole (each table's maintenance is idempotent); the failures name their tables.
      if (failures.length) throw new Error(`partition maintenance failed for ${failures.join('; ')}`);
      return { tables };
    },
  };
}
