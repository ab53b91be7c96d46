import { createBillingActivities, type BillingDeps } from './billing/subscriptions';
import * as ping from './ops/ping';
import { createRoyaltiesActivities, type RoyaltiesDeps } from './royalties';

/** Dependencies activities are built from: store clients, passed in so tests can give real ones. */
export interface ActivityDeps {
  /** PostgreSQL, the payment provider and the plan catalog; without them billing is not served. */
  billing?: BillingDeps;
  /** PostgreSQL (slonik and COPY), ClickHouse, MinIO; without them royalties is not served. */
  royalties?: RoyaltiesDeps;
}

/** Every activity, by the name workflows call it. */
export function createActivities(deps: ActivityDeps = {}) {
  return {
    ...ping,
    ...(deps.billing ? createBillingActivities(deps.billing) : {}),
    ...(deps.royalties ? createRoyaltiesActivities(deps.royalties) : {}),
  };
}

export type Activities = ReturnType<typeof createActivities>;
