import {
  makeWorkflowExporter,
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryActivityOutboundInterceptor,
} from '@temporalio/interceptors-opentelemetry';
import type { WorkerOptions } from '@temporalio/worker';
import type { Config } from '../lib/config';
import type { Tracing } from '../lib/telemetry';

/** The workflow interceptor module, bundled with the workflow code. */
export const WORKFLOW_INTERCEPTORS = require.resolve('../workflows/interceptors');

/**
 * Whether runs are traced: only when spans go somewhere. The interceptors cost about a third of a
 * workflow task's CPU (measured in bench:renewals), so with no exporter they stay out.
 */
export const traceWorkflows = (otel: Config['otel']) => otel.exporter !== 'none';

/** Worker options that trace activities and workflows, exporting workflow spans through a sink. */
export function tracingWorkerOptions(
  tracing: Tracing,
  enabled = true,
): Pick<WorkerOptions, 'interceptors' | 'sinks'> {
  if (!enabled) return {};
  return {
    interceptors: {
      workflowModules: [WORKFLOW_INTERCEPTORS],
      activity: [
        (ctx) => ({
          inbound: new OpenTelemetryActivityInboundInterceptor(ctx),
          outbound: new OpenTelemetryActivityOutboundInterceptor(ctx),
        }),
      ],
    },
    sinks: { exporter: makeWorkflowExporter(tracing.processor, tracing.resource) },
  };
}
