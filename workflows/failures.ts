import { BillingFailure } from './billing/contract';
import { GdprFailure } from './compliance/contract';
import { CatalogFailure } from './catalog/contract';
import { OpsFailure } from './ops/contract';
import { RoyaltiesFailure } from './royalties/contract';

/**
 * Every ApplicationFailure type a Cadenza workflow or activity raises, from the slices' contracts.
 * `api/problems.ts` maps each to a problem type and status in one exhaustive table.
 */
export const Failure = {
  ...BillingFailure,
  ...OpsFailure,
  ...GdprFailure,
  ...RoyaltiesFailure,
  ...CatalogFailure,
} as const;
export type FailureType = (typeof Failure)[keyof typeof Failure];
