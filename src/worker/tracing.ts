/**
 * Temporal's OpenTelemetry interceptors on the worker side: the workflow
 * interceptors (bundled with the workflow code, they trace the workflow run
 * and each activity it schedules, passing the context on in the activity's
 * headers) and the activity interceptors (a span per activity execution,
 * active while it runs, so the clients' outbound spans are its children).
 * Workflow spans are made in the sandbox and leave it through a sink.
 */
import { createRequire } from "node:module";
import {
  makeWorkflowExporter,
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryActivityOutboundInterceptor,
} from "@temporalio/interceptors-opentelemetry/lib/worker/index.js";
import type { WorkerOptions } from "@temporalio/worker";
import type { SpanSink } from "../shared/telemetry.js";

/** The workflow interceptor module of `@temporalio/interceptors-opentelemetry`, for the workflow bundle. */
export const WORKFLOW_TRACING_MODULE = createRequire(import.meta.url).resolve("@temporalio/interceptors-opentelemetry/lib/workflow-interceptors");

type WorkflowSpanProcessor = Parameters<typeof makeWorkflowExporter>[0];
type WorkflowSpanResource = Parameters<typeof makeWorkflowExporter>[1];

/**
 * The worker options that trace sessions into `spans`; with `spans` unset,
 * none, except that a prebuilt bundle (which always carries the workflow
 * interceptors, see bundle.ts) gets a sink that drops its workflow spans.
 */
export function workerTracingOptions(spans: SpanSink | undefined, prebuiltBundle: boolean): Pick<WorkerOptions, "interceptors" | "sinks"> {
  if (!spans) return prebuiltBundle ? { sinks: { exporter: { export: { fn: () => undefined } } } } : {};
  return {
    interceptors: {
      activity: [
        (ctx) => ({
          inbound: new OpenTelemetryActivityInboundInterceptor(ctx),
          outbound: new OpenTelemetryActivityOutboundInterceptor(ctx),
        }),
      ],
      ...(prebuiltBundle ? {} : { workflowModules: [WORKFLOW_TRACING_MODULE] }),
    },
    sinks: {
      // The package is typed against SDK 1.x; telemetry.ts's processor takes its spans (see acceptingSdkV1Spans).
      exporter: makeWorkflowExporter(spans.processor as unknown as WorkflowSpanProcessor, spans.resource as unknown as WorkflowSpanResource),
    },
  };
}
