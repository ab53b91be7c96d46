import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ConsoleSpanExporter,
  SimpleSpanProcessor,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import type { Config } from './config';

/**
 * OpenTelemetry tracing for Temporal (client, workflow and activity interceptors). Spans go to an
 * OTLP/HTTP collector, the console, or nowhere (the default: context still propagates through
 * Temporal headers, so turning export on later shows whole traces).
 */
export interface Tracing {
  resource: Resource;
  processor: SpanProcessor;
  shutdown(): Promise<void>;
}

export function setUpTracing(otel: Config['otel'], serviceName: string, exporter?: SpanExporter): Tracing {
  const resource = new Resource({ 'service.name': serviceName, 'service.namespace': 'cadenza' });
  const chosen: SpanExporter | undefined =
    exporter ??
    (otel.exporter === 'otlp'
      ? new OTLPTraceExporter({ url: otel.endpoint })
      : otel.exporter === 'console'
        ? new ConsoleSpanExporter()
        : undefined);
  const processor: SpanProcessor = chosen
    ? otel.exporter === 'otlp'
      ? new BatchSpanProcessor(chosen)
      : new SimpleSpanProcessor(chosen)
    : {
        onStart: () => undefined,
        onEnd: () => undefined,
        forceFlush: async () => undefined,
        shutdown: async () => undefined,
      };
  const provider = new BasicTracerProvider({ resource });
  provider.addSpanProcessor(processor);
  // The async-hooks context manager carries the active span across awaits, so the client's and the
  // activity's spans join the workflow's trace through Temporal headers.
  provider.register({ contextManager: new AsyncLocalStorageContextManager().enable() });
  return { resource, processor, shutdown: () => provider.shutdown() };
}
