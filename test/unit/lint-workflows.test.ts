import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** The lint rule that keeps workflow code deterministic: Node built-ins and store clients are refused. */
const root = path.join(__dirname, '..', '..');

/** Lints a probe file written for the moment into the folder (the type-aware linter needs a real file). */
function lintAs(folder: string, code: string): string[] {
  const file = path.join(root, folder, `lint-probe-${process.pid}.ts`);
  writeFileSync(file, code);
  try {
    const r = spawnSync(path.join(root, 'node_modules', '.bin', 'eslint'), ['--format', 'json', file], {
      cwd: root,
      encoding: 'utf8',
    });
    const [result] = JSON.parse(r.stdout) as { messages: { ruleId: string | null; message: string }[] }[];
    const messages = result?.messages ?? [];
    const fatal = messages.find((m) => m.ruleId === null);
    if (fatal) throw new Error(`eslint could not lint the probe: ${fatal.message}`);
    return messages.map((m) => m.ruleId as string);
  } finally {
    rmSync(file, { force: true });
  }
}

describe('workflow lint rules', () => {
  it('refuses Node built-ins, store clients and Math.random in workflows/', () => {
    const rules = lintAs(
      'workflows',
      "import { readFileSync } from 'node:fs';\nimport { Pool } from 'pg';\nexport const x = [readFileSync, Pool, Math.random()];\n",
    );
    expect(rules.filter((r) => r === 'no-restricted-imports')).toHaveLength(2);
    expect(rules).toContain('no-restricted-properties');
  }, 60_000);

  it('allows the same imports in activities/', () => {
    const rules = lintAs(
      'activities',
      "import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n",
    );
    expect(rules).toEqual([]);
  }, 60_000);
});
