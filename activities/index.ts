import { createReconciliationActivities } from './billing/reconciliation';
import { renewalFloorActivities } from './billing/renewal-floor';
import { createBillingActivities, type BillingDeps } from './billing/subscriptions';
import * as ping from './ops/ping';

/** Dependencies activities are built from: store clients, passed in so tests can give real ones. */
export interface ActivityDeps {
  /** PostgreSQL, the payment provider and the plan catalog; without them billing is not served. */
  billing?: BillingDeps;
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
  };
}

export type Activities = ReturnType<typeof createActivities>;
