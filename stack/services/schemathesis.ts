import path from 'node:path';
import { exists, run, type StackContext } from '../context';
import type { ServiceDef } from './types';

/**
 * Schemathesis (PyPI): the contract fuzzer that test/e2e/api-contract.test.ts runs against the API's own
 * OpenAPI document, in a virtualenv in the cache (like chdb). Pinned: its checks and CLI change between
 * releases.
 */
export const SCHEMATHESIS_VERSION = '4.32.5';

const venv = (ctx: Pick<StackContext, 'cache'>) => path.join(ctx.cache, 'schemathesis-venv');
export const schemathesisBin = (ctx: Pick<StackContext, 'cache'>) =>
  path.join(venv(ctx), 'bin', 'schemathesis');

async function installedVersion(ctx: Pick<StackContext, 'cache'>): Promise<string | undefined> {
  if (!exists(schemathesisBin(ctx))) return undefined;
  try {
    // "schemathesis, version 4.32.5"
    return /version (\S+)/.exec(await run('schemathesis', schemathesisBin(ctx), ['--version']))?.[1];
  } catch {
    return undefined;
  }
}

/** Installs the pinned release into the cache's virtualenv unless it is there already (idempotent). */
export async function provisionSchemathesis(ctx: Pick<StackContext, 'cache'>): Promise<void> {
  if ((await installedVersion(ctx)) === SCHEMATHESIS_VERSION) return;
  const python = path.join(venv(ctx), 'bin', 'python');
  if (!exists(python)) await run('schemathesis', 'python3', ['-m', 'venv', venv(ctx)]);
  await run(
    'schemathesis',
    python,
    ['-m', 'pip', 'install', '--quiet', `schemathesis==${SCHEMATHESIS_VERSION}`],
    {
      logFile: path.join(ctx.cache, 'pip-schemathesis.log'),
    },
  );
}

export const schemathesis: ServiceDef = {
  name: 'schemathesis',
  apt: ['python3-venv'],
  provision: provisionSchemathesis,
  ports: () => [],
  async ready(ctx) {
    const v = await installedVersion(ctx);
    if (v !== SCHEMATHESIS_VERSION)
      throw new Error(`schemathesis ${SCHEMATHESIS_VERSION} is not installed (found ${v ?? 'none'})`);
  },
};
