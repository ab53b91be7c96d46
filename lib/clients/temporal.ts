import type { Connection } from '@temporalio/client';
import { measureHealth, type Health } from './health';

export function temporalHealth(connection: Connection): Promise<Health> {
  return measureHealth('temporal', () => connection.healthService.check({}));
}
