/**
 * How one call is observed, whatever refused or served it: a counter by code,
 * a latency histogram, the open-streams gauge, one JSON log line and a server
 * span. The observe interceptor uses it for every call that reaches the
 * interceptors; the REST transcoder uses it for requests it refuses while
 * binding, before any interceptor runs.
 */
import type { DescMethod } from "@bufbuild/protobuf";
import type { ConnectError } from "@connectrpc/connect";
import { context, isSpanContextValid, propagation, SpanKind, SpanStatusCode, trace, type Context, type TextMapGetter, type Tracer } from "@opentelemetry/api";
import type { Logger } from "../shared/logger.js";
import { sessionLogFields } from "../temporal/session-log-fields.js";
import { codeName } from "./errors.js";
import type { ApiMetrics } from "./metrics.js";

/** One call being observed. */
export interface CallObservation {
  /** The context with the call's span active: the handler runs in it, so Temporal's client span is its child. */
  context: Context;
  /** The call is about the session workflow `workflowId` (when given): its log line names it. */
  concerns(workflowId: string | undefined): void;
  /** The call answered with a stream: counted as open until {@link finish}. */
  streamOpened(): void;
  /** Ends the observation with the call's outcome (no error: OK). Call once. */
  finish(error?: ConnectError): void;
}

/** Starts observations of calls. */
export interface CallObserver {
  /**
   * Starts observing a call of `method` over `protocol`, begun at `startedAt` (`performance.now()`, default now);
   * the span continues the caller's trace when `headers` carry a W3C `traceparent`.
   */
  begin(method: DescMethod, protocol: string, startedAt?: number, headers?: Headers): CallObservation;
}

/** Reads trace context from a Fetch API `Headers` (the request headers Connect interceptors see). */
const HEADERS_GETTER: TextMapGetter<Headers> = {
  get: (headers, key) => headers.get(key) ?? undefined,
  keys: (headers) => [...headers.keys()],
};

/** Observes calls into `metrics`, `logger` and `tracer`. */
export function createCallObserver(deps: { metrics: ApiMetrics; logger: Logger; tracer: Tracer }): CallObserver {
  const { metrics, logger, tracer } = deps;
  return {
    begin(desc, protocol, startedAt = performance.now(), headers) {
      const method = `${desc.parent.typeName}/${desc.name}`;
      const parent = headers ? propagation.extract(context.active(), headers, HEADERS_GETTER) : context.active();
      const span = tracer.startSpan(
        method,
        {
          kind: SpanKind.SERVER,
          startTime: performance.timeOrigin + startedAt,
          attributes: { "rpc.system": protocol === "rest" ? "http" : protocol, "rpc.service": desc.parent.typeName, "rpc.method": desc.name },
        },
        parent,
      );
      let streaming = false;
      let workflowId: string | undefined;
      return {
        context: trace.setSpan(parent, span),
        concerns(id) {
          workflowId ??= id;
        },
        streamOpened() {
          streaming = true;
          metrics.streamsInFlight.inc({ method, protocol });
        },
        finish(error) {
          if (streaming) metrics.streamsInFlight.dec({ method, protocol });
          const code = error ? codeName(error.code) : "OK";
          const durationMs = performance.now() - startedAt;
          metrics.requestsTotal.inc({ method, protocol, code });
          metrics.requestDuration.observe({ method, protocol }, durationMs / 1000);
          span.setAttribute("rpc.grpc.status_code", error?.code ?? 0);
          if (error) span.setStatus({ code: SpanStatusCode.ERROR, message: error.rawMessage });
          span.end();
          logger.info("rpc", {
            method,
            protocol,
            code,
            durationMs: Math.round(durationMs * 10) / 10,
            ...(workflowId !== undefined ? sessionLogFields(workflowId) : {}),
            // The span is not the active one here (the call ran in its own context), so it is named explicitly.
            ...(isSpanContextValid(span.spanContext()) ? { trace_id: span.spanContext().traceId } : {}),
            ...(error ? { error: error.rawMessage } : {}),
          });
        },
      };
    },
  };
}
