import { readFileSync } from 'node:fs';
import { PlanCatalog } from '../domain/billing/plans';

/** The plan catalog the configuration names (CADENZA_BILLING_PLANS_FILE), or the built-in plans. */
export function loadPlanCatalog(file: string | undefined): PlanCatalog {
  return file ? PlanCatalog.parse(JSON.parse(readFileSync(file, 'utf8'))) : PlanCatalog.builtIn();
}
