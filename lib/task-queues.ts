/**
 * Cadenza's task queues, one per business subsystem (and `catalog-media` for the catalog's ffmpeg work, so it
 * scales apart); workers serve all by default, or some by config.
 */
export const TASK_QUEUES = ['catalog', 'catalog-media', 'billing', 'royalties', 'compliance', 'ops'] as const;
export type TaskQueue = (typeof TASK_QUEUES)[number];
