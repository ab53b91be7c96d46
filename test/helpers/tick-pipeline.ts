import { scratchTickPipeline as scratch, type TickPipeline } from '../../stack/scratch';
import { testConfig } from './env';

export type { TickPipeline };

/** Migrated scratch databases and a play-ticks topic pair of the test's own, removed by drop(). */
export function scratchTickPipeline(name: string, partitions: number): Promise<TickPipeline> {
  return scratch(testConfig(), name, partitions);
}
