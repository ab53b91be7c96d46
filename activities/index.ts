import * as ping from './ops/ping';

/** Dependencies activities are built from: store clients, passed in so tests can give real ones. */
export type ActivityDeps = Record<string, never>;

/** Every activity, by the name workflows call it. */
export function createActivities(_deps: ActivityDeps = {}) {
  return { ...ping };
}

export type Activities = ReturnType<typeof createActivities>;
