import { createReconciliationActivities } from './billing/reconciliation';
import { renewalFloorActivities } from './billing/renewal-floor';
import { createBillingActivities, type BillingDeps } from './billing/subscriptions';
import { createComplianceActivities, type ComplianceDeps } from './compliance';
import { createCatalogSliceActivities, type CatalogDeps } from './catalog';
import * as ping from './ops/ping';
import { createOpsActivities, type OpsDeps } from './ops';
import { createRoyaltiesActivities, type RoyaltiesDeps } from './royalties';

/** Dependencies activities are built from: store clients, passed in so tests can give real ones. */
export interface ActivityDeps {
  /** PostgreSQL, the payment provider and the plan catalog; without them billing is not served. */
  billing?: BillingDeps;
  /** Every store, Temporal and the payment provider; without them GDPR erasure and export are not served. */
  compliance?: ComplianceDeps;
  /** Every store and the config; without them the scheduled ops jobs are not served. */
  ops?: OpsDeps;
  /** PostgreSQL (slonik and COPY), ClickHouse, MinIO; without them royalties is not served. */
  royalties?: RoyaltiesDeps;
  /** PostgreSQL, MinIO, OpenSearch and ClickHouse with the deployment's prefixes; without them catalog is not served. */
  catalog?: CatalogDeps;
}

/** Every activity, by the name workflows call it. */
export function createActivities(deps: ActivityDeps = {}) {
  const billing = deps.billing;
  return {
    ...ping,
    ...(billing ? { ...createBillingActivities(billing), ...renewalFloorActivities } : {}),
    ...(billing?.reconciliation
      ? createReconciliationActivities({ ...billing, ...billing.reconciliation })
      : {}),
    ...(deps.compliance ? createComplianceActivities(deps.compliance) : {}),
    ...(deps.ops ? createOpsActivities(deps.ops) : {}),
    ...(deps.royalties ? createRoyaltiesActivities(deps.royalties) : {}),
    ...(deps.catalog ? createCatalogSliceActivities(deps.catalog) : {}),
  };
}

export type Activities = ReturnType<typeof createActivities>;
