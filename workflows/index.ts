// Every workflow type Cadenza registers; the worker bundles this file.
export { ping } from './ops/ping';
export { subscription } from './billing/subscription';
export { gdprErasure } from './compliance/erasure';
export { gdprExport } from './compliance/export';
