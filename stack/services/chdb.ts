import path from 'node:path';
import { exists, run, type StackContext } from '../context';
import type { ServiceDef } from './types';

/**
 * chdb (PyPI): a current ClickHouse engine in-process, in a virtualenv in the cache. CI runs every
 * ClickHouse DDL and query through it too, so the compose path's current release accepts them.
 */
export const CHDB_VERSION = '4.4.0';

export const chdbPython = (ctx: Pick<StackContext, 'cache'>) =>
  path.join(ctx.cache, 'chdb-venv', 'bin', 'python');

async function installedVersion(ctx: StackContext): Promise<string | undefined> {
  if (!exists(chdbPython(ctx))) return undefined;
  try {
    return (await run('chdb', chdbPython(ctx), ['-c', 'import chdb; print(chdb.__version__)'])).trim();
  } catch {
    return undefined;
  }
}

export const chdb: ServiceDef = {
  name: 'chdb',
  apt: ['python3-venv'],
  async provision(ctx) {
    if ((await installedVersion(ctx)) === CHDB_VERSION) return;
    const venv = path.join(ctx.cache, 'chdb-venv');
    if (!exists(chdbPython(ctx))) await run('chdb', 'python3', ['-m', 'venv', venv]);
    await run('chdb', chdbPython(ctx), ['-m', 'pip', 'install', '--quiet', `chdb==${CHDB_VERSION}`], {
      logFile: path.join(ctx.cache, 'pip-chdb.log'),
    });
  },
  ports: () => [],
  async ready(ctx) {
    const v = await installedVersion(ctx);
    if (v !== CHDB_VERSION) throw new Error(`chdb ${CHDB_VERSION} is not installed (found ${v ?? 'none'})`);
  },
};
