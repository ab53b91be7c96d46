import type { StackContext } from '../context';

/** A supervised process: what supervisord runs for a service. */
export interface Program {
  command: string;
  user?: string;
  environment?: Record<string, string>;
  directory?: string;
  /** Signal for a clean stop (PostgreSQL: INT = fast shutdown). */
  stopSignal?: 'TERM' | 'INT' | 'QUIT' | 'KILL';
  stopWaitSecs?: number;
}

export interface ServiceDef {
  name: string;
  /** Debian packages it needs (installed in one apt transaction for the whole stack). */
  apt?: string[];
  /** Fetches or builds binaries and jars; idempotent and cached outside the work tree. */
  provision?(ctx: StackContext): Promise<void>;
  /** Lays out data folders and config files under the state folder; idempotent. */
  prepare?(ctx: StackContext): Promise<void>;
  /** The long-running process, if the service has one (ffmpeg and the test server do not). */
  program?(ctx: StackContext): Program;
  /** Loopback ports the process binds; checked to be free before it starts. */
  ports(ctx: StackContext): number[];
  /** Answers when the service is usable. */
  ready(ctx: StackContext): Promise<void>;
  readyTimeoutMs?: number;
  /** One-time set-up that needs the running service (roles, databases). Idempotent. */
  afterReady?(ctx: StackContext): Promise<void>;
  /** Where to read more when it fails. */
  url?(ctx: StackContext): string;
}
