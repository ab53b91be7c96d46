import { Client, Connection } from '@temporalio/client';
import type { Config } from '../config';
import { measureHealth, type Health } from './health';

export async function connectTemporal(t: Config['temporal']): Promise<Client> {
  const connection = await Connection.connect({ address: t.address, connectTimeout: 5000 });
  return new Client({ connection, namespace: t.namespace });
}

export function temporalHealth(connection: Connection): Promise<Health> {
  return measureHealth('temporal', () => connection.healthService.check({}));
}
