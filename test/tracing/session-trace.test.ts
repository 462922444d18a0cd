/**
 * One trace per session, checked against a real receiver: Jaeger all-in-one
 * (built from its Go module, local/jaeger.ts) on free ports, the companions,
 * worker and API started as processes from their entry points with
 * `OTEL_EXPORTER_OTLP_ENDPOINT` pointed at it. Ray Serve receives the
 * `traceparent` header but makes no spans. A caller's W3C `traceparent`
 * is honoured, so each test knows its trace id and reads that trace back
 * from Jaeger's query API.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SessionService } from "../../gen/somagent/orchestrator/v1/session_pb.js";
import { installJaeger, startJaeger, type Jaeger } from "../../local/jaeger.js";
import { startServices, type Services } from "../../local/services.js";
import { infraEndpoints } from "../support/infra.js";
import { waitFor } from "../support/wait-for.js";

/** A span as Jaeger's query API returns it. */
interface JaegerSpan {
  traceID: string;
  spanID: string;
  operationName: string;
  references: { refType: string; traceID: string; spanID: string }[];
  processID: string;
}

interface JaegerTrace {
  traceID: string;
  spans: JaegerSpan[];
  processes: Record<string, { serviceName: string }>;
}

const ACTIVITIES = ["evaluate-policy", "issue-identity-token", "run-slm-completion", "emit-audit-event"] as const;
/** The outbound span each activity makes (http-json.ts names HTTP spans `<method> <target>`). */
const OUTBOUND_OF: Record<(typeof ACTIVITIES)[number], string> = {
  "evaluate-policy": "POST policy-engine",
  "issue-identity-token": "POST identity-service",
  "run-slm-completion": "POST ray-serve",
  "emit-audit-event": "publish agent.audit",
};
/** The companions' server spans, children of the worker's calls to them. */
const COMPANION_SPAN_OF: Record<string, string> = {
  "POST policy-engine": "POST /v1/evaluate",
  "POST identity-service": "POST /v1/tokens/issue",
};
const START_RPC = "somagent.orchestrator.v1.SessionService/Start";

let stateDir: string;
let jaeger: Jaeger;
let services: Services;
beforeAll(async () => {
  stateDir = await mkdtemp(path.join(tmpdir(), "somagent-tracing-"));
  jaeger = await startJaeger({ binary: await installJaeger(), stateDir });
  services = await startServices(infraEndpoints(), {
    stateDir,
    codecKeys: `tracing:${randomBytes(32).toString("base64")}`,
    taskQueue: `tracing-${randomBytes(4).toString("hex")}`,
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: jaeger.otlpEndpoint.href },
  });
}, 600_000);
afterAll(async () => {
  await services?.stop();
  await jaeger?.stop();
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
});

/** A caller's span context as a `traceparent` header, and its ids. */
function callerTrace(): { traceId: string; spanId: string; traceparent: string } {
  const traceId = randomBytes(16).toString("hex");
  const spanId = randomBytes(8).toString("hex");
  return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-01` };
}

async function fetchTrace(traceId: string): Promise<JaegerTrace | undefined> {
  const response = await fetch(new URL(`api/traces/${traceId}`, jaeger.queryUrl), { signal: AbortSignal.timeout(5_000) });
  if (response.status === 404) return undefined;
  expect(response.status).toBe(200);
  const { data } = (await response.json()) as { data: JaegerTrace[] };
  return data[0];
}

/** The trace once it holds a span of each of `operations` (Jaeger is polled: processes export their spans in batches, every 5 s). */
async function traceHolding(traceId: string, operations: readonly string[]): Promise<JaegerTrace> {
  let found: JaegerTrace | undefined;
  await waitFor(
    `trace ${traceId} to hold ${operations.join(", ")}`,
    async () => {
      found = await fetchTrace(traceId);
      const names = new Set(found?.spans.map((span) => span.operationName));
      return operations.every((operation) => names.has(operation));
    },
    60_000,
  );
  return found!;
}

function parentOf(span: JaegerSpan): string | undefined {
  return span.references.find((reference) => reference.refType === "CHILD_OF")?.spanID;
}

function childrenOf(trace: JaegerTrace, parent: JaegerSpan, operation: string): JaegerSpan[] {
  return trace.spans.filter((span) => span.operationName === operation && parentOf(span) === parent.spanID);
}

/** The one span named `operation` (whose parent is `parent` when given). */
function theSpan(trace: JaegerTrace, operation: string, parent?: JaegerSpan): JaegerSpan {
  const matching = parent ? childrenOf(trace, parent, operation) : trace.spans.filter((span) => span.operationName === operation);
  expect(matching.map((span) => span.operationName), `${operation} under ${parent?.operationName ?? "any parent"}`).toEqual([operation]);
  return matching[0]!;
}

describe("tracing with OTEL_EXPORTER_OTLP_ENDPOINT set", () => {
  it("records one session over gRPC as one trace: RPC → Start → workflow → each activity → its outbound call", async () => {
    const caller = callerTrace();
    const client = createClient(SessionService, createGrpcTransport({ baseUrl: services.api.url.origin }));
    const headers = { traceparent: caller.traceparent };
    const started = await client.start({ tenant: "tenant-demo", user: "user-demo", prompt: "trace this session" }, { headers });
    for await (const _event of client.watch({ workflowId: started.workflowId })) {
      // Read to the end: the stream closes after the session's terminal event.
    }
    const workflowRun = "RunWorkflow:session-start-workflow";
    const expected = [
      START_RPC,
      "StartWorkflow:session-start-workflow",
      workflowRun,
      ...ACTIVITIES.flatMap((a) => [`RunActivity:${a}`, OUTBOUND_OF[a]]),
      ...Object.values(COMPANION_SPAN_OF),
    ];
    const trace = await traceHolding(caller.traceId, expected);

    // Parents intact: every span's parent is in the trace, but the RPC's, which is the caller's.
    const ids = new Set(trace.spans.map((span) => span.spanID));
    const rpc = theSpan(trace, START_RPC);
    expect(parentOf(rpc)).toBe(caller.spanId);
    for (const span of trace.spans.filter((s) => s !== rpc)) expect(ids.has(parentOf(span) ?? ""), `parent of ${span.operationName}`).toBe(true);

    // The chain, link by link.
    const start = theSpan(trace, "StartWorkflow:session-start-workflow", rpc);
    const workflow = theSpan(trace, workflowRun, start);
    for (const activity of ACTIVITIES) {
      const scheduled = theSpan(trace, `StartActivity:${activity}`, workflow);
      // An attempt that failed and was retried is a span of its own: one attempt reached the service.
      const chains = childrenOf(trace, scheduled, `RunActivity:${activity}`).flatMap((run) =>
        childrenOf(trace, run, OUTBOUND_OF[activity]).filter((outbound) => {
          const companion = COMPANION_SPAN_OF[outbound.operationName];
          return !companion || childrenOf(trace, outbound, companion).length > 0;
        }),
      );
      expect(chains.length, `${activity}: an attempt whose outbound call is in the trace`).toBeGreaterThan(0);
    }
    const tracedServices = new Set(Object.values(trace.processes).map((process) => process.serviceName));
    expect(tracedServices).toEqual(
      new Set(["somagent-orchestrator-api", "somagent-orchestrator-worker", "somagent-policy-engine", "somagent-identity-service"]),
    );
  });

  const transports: Record<string, (baseUrl: string) => Transport> = {
    "Connect (HTTP/1.1)": (baseUrl) => createConnectTransport({ baseUrl, httpVersion: "1.1" }),
    "gRPC-Web (HTTP/1.1)": (baseUrl) => createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }),
  };
  for (const [name, transport] of Object.entries(transports)) {
    it(`continues the caller's trace over ${name}: its RPC span is the parent of Temporal's Start`, async () => {
      const caller = callerTrace();
      const client = createClient(SessionService, transport(services.api.url.origin));
      await client.start({ tenant: "tenant-demo", user: "user-demo", prompt: `over ${name}` }, { headers: { traceparent: caller.traceparent } });
      const trace = await traceHolding(caller.traceId, [START_RPC, "StartWorkflow:session-start-workflow"]);
      const rpc = theSpan(trace, START_RPC);
      expect(parentOf(rpc)).toBe(caller.spanId);
      theSpan(trace, "StartWorkflow:session-start-workflow", rpc);
    });
  }

  it("continues the caller's trace over REST: its RPC span is the parent of Temporal's Start", async () => {
    const caller = callerTrace();
    const response = await fetch(new URL("v1/sessions/start", services.api.url), {
      method: "POST",
      headers: { "content-type": "application/json", traceparent: caller.traceparent },
      body: JSON.stringify({ tenant: "tenant-demo", user: "user-demo", prompt: "over REST" }),
    });
    expect(response.status).toBe(200);
    const trace = await traceHolding(caller.traceId, [START_RPC, "StartWorkflow:session-start-workflow"]);
    const rpc = theSpan(trace, START_RPC);
    expect(parentOf(rpc)).toBe(caller.spanId);
    theSpan(trace, "StartWorkflow:session-start-workflow", rpc);
  });
});
