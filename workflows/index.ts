// Every workflow type Cadenza registers; the worker bundles this file.
export { ping } from './ops/ping';
export { subscription } from './billing/subscription';
export { billingReconciliation } from './billing/reconciliation';
export { renewalFloor } from './billing/renewal-floor';
