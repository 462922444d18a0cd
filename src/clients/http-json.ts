/**
 * The one JSON-over-HTTP helper of the clients: a timeout on every call, every
 * failure classified as transient or permanent, each call counted and timed on
 * the registry the entry point injects, and traced: a client span per call,
 * its W3C `traceparent` sent in the request headers.
 */
import { Counter, Histogram } from "prom-client";
import type { Dispatcher } from "undici";
import { PermanentCallError, TransientCallError, isTransientStatus } from "../shared/call-errors.js";
import { isRecord } from "../shared/json-answer.js";
import { withOutboundSpan } from "../shared/outbound-span.js";
import type { Registry } from "../shared/metrics.js";

interface OutboundMetrics {
  requests: Counter<"target" | "outcome">;
  duration: Histogram<"target">;
}

/** One set per registry, so every client a worker builds on it adds to the same series. */
const metricsByRegistry = new WeakMap<Registry, OutboundMetrics>();

function outboundMetrics(registry: Registry): OutboundMetrics {
  let metrics = metricsByRegistry.get(registry);
  if (!metrics) {
    metrics = {
      requests: new Counter({
        name: "somagent_outbound_requests_total",
        help: "HTTP calls to dependencies, by target and outcome (ok, transient, permanent).",
        labelNames: ["target", "outcome"] as const,
        registers: [registry],
      }),
      duration: new Histogram({
        name: "somagent_outbound_request_duration_seconds",
        help: "Duration of HTTP calls to dependencies, by target.",
        labelNames: ["target"] as const,
        buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
        registers: [registry],
      }),
    };
    metricsByRegistry.set(registry, metrics);
  }
  return metrics;
}

/** One JSON-over-HTTP call. */
export interface JsonRequest {
  /** Short name of the dependency, used in errors and metric labels (e.g. `policy-engine`). */
  target: string;
  url: URL | string;
  method?: "GET" | "POST" | "PUT" | "DELETE";
  body?: unknown;
  headers?: Record<string, string>;
  timeoutMs: number;
  /** Aborts the call early, e.g. when a Temporal activity is cancelled. */
  signal?: AbortSignal;
  /** Connection pool to send through instead of the global one (Node's `fetch` extension). */
  dispatcher?: Dispatcher;
}

/** A successful answer: the status and the parsed JSON body (undefined when empty). */
export interface JsonResponse {
  status: number;
  body: unknown;
}

/**
 * Sends one request with a timeout and classifies every failure: network
 * errors, timeouts, 408/425/429 and 5xx throw {@link TransientCallError}; other
 * non-2xx answers and unparseable bodies throw {@link PermanentCallError},
 * whose message carries the server's own `message`/`error`/`detail` field when
 * it sent one. Does not retry: retries belong to the caller (Temporal).
 */
export type RequestJson = (request: JsonRequest) => Promise<JsonResponse>;

/**
 * Builds the {@link RequestJson} of the clients that measure on `registry`:
 * `somagent_outbound_requests_total` and `somagent_outbound_request_duration_seconds`,
 * registered once per registry.
 */
export function createRequestJson(registry: Registry): RequestJson {
  const metrics = outboundMetrics(registry);
  return (request) => {
    const method = httpMethodOf(request);
    const url = new URL(request.url);
    const attributes = { "peer.service": request.target, "http.request.method": method, "server.address": url.hostname, "url.path": url.pathname };
    return withOutboundSpan(`${method} ${request.target}`, { kind: "client", attributes }, (traceHeaders) =>
      requestJson({ ...request, method, headers: { ...request.headers, ...traceHeaders } }, metrics),
    );
  };
}

function httpMethodOf(request: JsonRequest): NonNullable<JsonRequest["method"]> {
  return request.method ?? (request.body === undefined ? "GET" : "POST");
}

async function requestJson(request: JsonRequest, { requests, duration }: OutboundMetrics): Promise<JsonResponse> {
  const { target } = request;
  const stopTimer = duration.startTimer({ target });
  const signals = [AbortSignal.timeout(request.timeoutMs)];
  if (request.signal) signals.push(request.signal);
  let outcome: "ok" | "transient" | "permanent" = "transient";
  try {
    let response: Response;
    try {
      response = await fetch(request.url, {
        method: httpMethodOf(request),
        headers: {
          accept: "application/json",
          ...(request.body === undefined ? {} : { "content-type": "application/json" }),
          ...request.headers,
        },
        body: request.body === undefined ? undefined : JSON.stringify(request.body),
        signal: AbortSignal.any(signals),
        ...(request.dispatcher ? { dispatcher: request.dispatcher } : {}),
      });
    } catch (error) {
      const reason = error instanceof Error && error.name === "TimeoutError"
        ? `no answer within ${request.timeoutMs} ms`
        : `unreachable (${describeNetworkError(error)})`;
      throw new TransientCallError(target, reason, undefined, { cause: error });
    }
    const text = await response.text();
    let body: unknown;
    try {
      body = text === "" ? undefined : JSON.parse(text);
    } catch (error) {
      if (response.ok) {
        outcome = "permanent";
        throw new PermanentCallError(target, `answered ${response.status} with a body that is not JSON`, response.status, { cause: error });
      }
    }
    if (!response.ok) {
      const message = `answered ${response.status}${serverMessage(body)}`;
      if (isTransientStatus(response.status)) throw new TransientCallError(target, message, response.status);
      outcome = "permanent";
      throw new PermanentCallError(target, message, response.status);
    }
    outcome = "ok";
    return { status: response.status, body };
  } finally {
    stopTimer();
    requests.inc({ target, outcome });
  }
}

function serverMessage(body: unknown): string {
  if (!isRecord(body)) return "";
  const message = body.message ?? body.error ?? body.detail;
  return typeof message === "string" ? `: ${message}` : "";
}

function describeNetworkError(error: unknown): string {
  const cause = error instanceof Error ? (error.cause as { code?: string } | undefined) : undefined;
  if (cause?.code) return cause.code;
  return error instanceof Error ? error.message : String(error);
}
