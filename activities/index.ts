import { createBillingActivities, type BillingDeps } from './billing/subscriptions';
import { createCatalogSliceActivities, type CatalogDeps } from './catalog';
import * as ping from './ops/ping';

/** Dependencies activities are built from: store clients, passed in so tests can give real ones. */
export interface ActivityDeps {
  /** PostgreSQL, the payment provider and the plan catalog; without them billing is not served. */
  billing?: BillingDeps;
  /** PostgreSQL, MinIO, OpenSearch and ClickHouse with the deployment's prefixes; without them catalog is not served. */
  catalog?: CatalogDeps;
}

/** Every activity, by the name workflows call it. */
export function createActivities(deps: ActivityDeps = {}) {
  return {
    ...ping,
    ...(deps.billing ? createBillingActivities(deps.billing) : {}),
    ...(deps.catalog ? createCatalogSliceActivities(deps.catalog) : {}),
  };
}

export type Activities = ReturnType<typeof createActivities>;
