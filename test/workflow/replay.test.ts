import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import { workflowBundle, workflowSinks } from '../helpers/env';

/**
 * Every recorded history (test/replay/histories, made by scripts/record-histories.ts) replays against
 * the current workflow code: a change that would break runs in flight fails here, not in production.
 */
const dir = path.join(__dirname, '..', 'replay', 'histories');
const histories = readdirSync(dir).filter((f) => f.endsWith('.json'));

describe('replay of recorded histories', () => {
  it('has histories to replay', () => {
    expect(histories.length).toBeGreaterThan(0);
  });

  it.each(histories)(
    '%s replays without nondeterminism',
    async (file) => {
      const history = historyFromJSON(JSON.parse(readFileSync(path.join(dir, file), 'utf8')));
      await Worker.runReplayHistory(
        { workflowBundle: await workflowBundle(), sinks: workflowSinks() },
        history,
        file.replace(/\.json$/, ''),
      );
    },
    60_000,
  );
});
