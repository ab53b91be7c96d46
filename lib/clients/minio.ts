import { Client } from 'minio';
import type { Config } from '../config';
import { measureHealth, type Health } from './health';

export function createMinio(m: Config['minio']): Client {
  return new Client({
    endPoint: m.endPoint,
    port: m.port,
    useSSL: m.useSSL,
    accessKey: m.accessKey,
    secretKey: m.secretKey,
  });
}

export function minioHealth(client: Client): Promise<Health> {
  return measureHealth('minio', () => client.listBuckets());
}
