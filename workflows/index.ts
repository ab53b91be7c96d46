// Every workflow type Cadenza registers; the worker bundles this file.
export { ping } from './ops/ping';
export { subscription } from './billing/subscription';
export { royaltySettlement, royaltySettlementShard } from './royalties/settlement';
export { scheduledRoyaltySettlement } from './royalties/scheduled';
