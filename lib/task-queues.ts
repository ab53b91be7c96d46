/** Cadenza's task queues, one per business subsystem; workers serve all by default, or some by config. */
export const TASK_QUEUES = ['catalog', 'billing', 'royalties', 'compliance', 'ops'] as const;
export type TaskQueue = (typeof TASK_QUEUES)[number];
