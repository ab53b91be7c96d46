import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTES } from '../../stack/services/temporal';
import { testConfig } from '../helpers/env';

/** Cadenza's search attributes are registered on the dev server, in the demo and the test namespace. */
describe('Temporal search attributes', () => {
  it('has every Cadenza* attribute with its type in both namespaces', async () => {
    const cfg = testConfig();
    const connection = await Connection.connect({ address: cfg.temporal.address });
    try {
      for (const namespace of ['default', 'cadenza-test']) {
        const res = await connection.operatorService.listSearchAttributes({ namespace });
        const custom = Object.keys(res.customAttributes ?? {});
        expect({ namespace, custom: custom.filter((k) => k.startsWith('Cadenza')).sort() }).toEqual({
          namespace,
          custom: Object.keys(SEARCH_ATTRIBUTES).sort(),
        });
      }
    } finally {
      await connection.close();
    }
  });
});
