import { Context } from '@temporalio/activity';

/**
 * Heartbeats for the long steps: progress details as they change, and a beat every few seconds even when
 * nothing moves (ClickHouse aggregating a month before its first row), so a worker killed mid-step is
 * noticed within the heartbeat timeout and the step retried elsewhere. Outside an activity (benchmarks
 * call the steps directly) it does nothing. The signal aborts the step's streams when Temporal cancels it.
 */
export class Progress {
  private details: Record<string, unknown>;
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly ctx: Context | undefined;

  constructor(phase: string) {
    this.details = { phase };
    try {
      this.ctx = Context.current();
    } catch {
      this.ctx = undefined;
    }
    if (this.ctx) {
      this.timer = setInterval(() => this.beat(), 5000);
      this.timer.unref();
    }
  }

  get signal(): AbortSignal | undefined {
    return this.ctx?.cancellationSignal;
  }

  update(details: Record<string, unknown>): void {
    this.details = { ...this.details, ...details };
  }

  beat(): void {
    this.ctx?.heartbeat(this.details);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
