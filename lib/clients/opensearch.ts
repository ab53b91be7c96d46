import { Client } from '@opensearch-project/opensearch';
import type { Config } from '../config';
import { measureHealth, type Health } from './health';

export function createOpenSearch(os: Config['opensearch']): Client {
  return new Client({ node: os.url, requestTimeout: 30_000 });
}

export function openSearchHealth(client: Client): Promise<Health> {
  return measureHealth('opensearch', async () => {
    const { body } = await client.cluster.health();
    if (body.status === 'red') throw new Error('cluster status red');
  });
}
