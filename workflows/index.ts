// Every workflow type Cadenza registers; the worker bundles this file.
export { ping } from './ops/ping';
export { subscription } from './billing/subscription';
export { gdprErasure } from './compliance/erasure';
export { gdprExport } from './compliance/export';
export { dimensionRefresh } from './ops/dimensions';
export { partitionMaintenance } from './ops/partitions';
export { backupStores } from './ops/backups';
export { restoreDrill } from './ops/restore-drill';
export { refreshRecommendations } from './ops/recommendations';
export {
  scheduledDimensionRefresh,
  scheduledPartitionMaintenance,
  scheduledBackup,
  scheduledRestoreDrill,
  scheduledRecommendations,
} from './ops/scheduled';
export { billingReconciliation } from './billing/reconciliation';
export { renewalFloor } from './billing/renewal-floor';
export { royaltySettlement, royaltySettlementShard } from './royalties/settlement';
export { scheduledRoyaltySettlement } from './royalties/scheduled';
export { trackIngestion } from './catalog/track-ingestion';
export { trackChange } from './catalog/track-change';
export { syncPlayCounts } from './catalog/play-counts';
export { reindexSearch } from './catalog/search-reindex';
