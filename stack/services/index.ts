import { chdb } from './chdb';
import { clickhouse } from './clickhouse';
import { ffmpeg } from './ffmpeg';
import { kafka } from './kafka';
import { minio } from './minio';
import { opensearch } from './opensearch';
import { paymentsSandbox } from './payments-sandbox';
import { postgres } from './postgres';
import { schemathesis } from './schemathesis';
import { temporal } from './temporal';
import { temporalTestServer } from './temporal-test-server';
import type { ServiceDef } from './types';

/** The native stack of DESIGN §3, in start order. */
export const services: ServiceDef[] = [
  postgres,
  paymentsSandbox,
  clickhouse,
  minio,
  temporal,
  kafka,
  opensearch,
  temporalTestServer,
  chdb,
  schemathesis,
  ffmpeg,
];

export type { ServiceDef } from './types';
