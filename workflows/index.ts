// Every workflow type Cadenza registers; the worker bundles this file.
export { ping } from './ops/ping';
export { subscription } from './billing/subscription';
export { trackIngestion } from './catalog/track-ingestion';
export { trackChange } from './catalog/track-change';
export { syncPlayCounts } from './catalog/play-counts';
export { reindexSearch } from './catalog/search-reindex';
