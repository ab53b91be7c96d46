import { createBillingActivities, type BillingDeps } from './billing/subscriptions';
import * as ping from './ops/ping';
import { createOpsActivities, type OpsDeps } from './ops';

/** Dependencies activities are built from: store clients, passed in so tests can give real ones. */
export interface ActivityDeps {
  /** PostgreSQL, the payment provider and the plan catalog; without them billing is not served. */
  billing?: BillingDeps;
  /** Every store and the config; without them the scheduled ops jobs are not served. */
  ops?: OpsDeps;
}

/** Every activity, by the name workflows call it. */
export function createActivities(deps: ActivityDeps = {}) {
  return {
    ...ping,
    ...(deps.billing ? createBillingActivities(deps.billing) : {}),
    ...(deps.ops ? createOpsActivities(deps.ops) : {}),
  };
}

export type Activities = ReturnType<typeof createActivities>;
