import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { goInstall } from '../provision';
import { httpProbe } from '../probes';
import type { ServiceDef } from './types';

/** Pinned: `@latest` as resolved by the Go proxy when this was written, so builds are reproducible. */
export const MINIO = { module: 'github.com/minio/minio', version: 'v0.0.0-20260212201848-7aac2a2c5b7c' };

export const minio: ServiceDef = {
  name: 'minio',
  async provision(ctx) {
    await goInstall(ctx, 'minio', MINIO.module, MINIO.version, 'minio');
  },
  ports: (ctx) => [ctx.config.minio.port, ctx.config.minio.consolePort],
  async prepare(ctx) {
    mkdirSync(path.join(ctx.data, 'minio'), { recursive: true });
  },
  program(ctx) {
    const m = ctx.config.minio;
    return {
      command: `${path.join(ctx.cacheBin, 'minio')} server ${path.join(ctx.data, 'minio')} --address ${m.endPoint}:${m.port} --console-address ${m.endPoint}:${m.consolePort} --quiet`,
      environment: { MINIO_ROOT_USER: m.accessKey, MINIO_ROOT_PASSWORD: m.secretKey, MINIO_UPDATE: 'off' },
    };
  },
  async ready(ctx) {
    const m = ctx.config.minio;
    await httpProbe(`http://${m.endPoint}:${m.port}/minio/health/ready`, (s) => s === 200);
  },
  readyTimeoutMs: 60_000,
  url: (ctx) => `http://${ctx.config.minio.endPoint}:${ctx.config.minio.consolePort}`,
};
