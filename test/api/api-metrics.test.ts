/**
 * The API's /metrics answers questions: after a few calls over different
 * protocols, the counters moved by exactly the calls made.
 */
import { randomUUID } from "node:crypto";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import { SessionService } from "../../gen/somagent/orchestrator/v1/session_pb.js";
import { moved, scrape, total } from "../support/prometheus.js";
import { waitFor } from "../support/wait-for.js";
import { useApiFixture } from "./api-fixture.js";

const fixture = useApiFixture();
const START = "somagent.orchestrator.v1.SessionService/Start";
const GET = "somagent.orchestrator.v1.SessionService/Get";
const WATCH = "somagent.orchestrator.v1.SessionService/Watch";

/** The API's /metrics. */
const scrapeApi = () => scrape(`${fixture().baseUrl}/metrics`);

describe("API /metrics", () => {
  it("counts RPCs by method, protocol and code, sessions started by outcome, and open Watch streams", async () => {
    const before = await scrapeApi();
    const sessionId = randomUUID();
    const request = { tenant: "tenant-demo", user: "user-demo", prompt: "p", metadata: { session_id: sessionId } };
    const grpc = createClient(SessionService, createGrpcTransport({ baseUrl: fixture().baseUrl }));
    const connect = createClient(SessionService, createConnectTransport({ baseUrl: fixture().baseUrl, httpVersion: "1.1" }));
    const { workflowId } = await grpc.start(request);
    await connect.start(request); // the same caller again: the existing session
    await grpc.get({ workflowId });
    await expect(connect.get({ workflowId: "session-never-started" })).rejects.toMatchObject({ code: Code.NotFound });

    const watching = new AbortController();
    const stream = grpc.watch({ workflowId }, { signal: watching.signal })[Symbol.asyncIterator]();
    await stream.next();
    const open = await scrapeApi();
    watching.abort();
    await stream.next().catch((error: unknown) => expect(ConnectError.from(error).code).toBe(Code.Canceled));
    const watchStreams = { method: WATCH, protocol: "grpc" };
    await waitFor("the Watch stream counted as closed", async () => total(await scrapeApi(), "somagent_api_streams_in_flight", watchStreams) === 0);
    const after = await scrapeApi();

    const rpcs = (method: string, protocol: string, code: string) => moved(before, after, "somagent_api_requests_total", { method, protocol, code });
    expect(rpcs(START, "grpc", "OK")).toBe(1);
    expect(rpcs(START, "connect", "OK")).toBe(1);
    expect(rpcs(GET, "grpc", "OK")).toBe(1);
    expect(rpcs(GET, "connect", "NOT_FOUND")).toBe(1);
    expect(rpcs(WATCH, "grpc", "CANCELLED")).toBe(1);
    expect(moved(before, after, "somagent_api_request_duration_seconds_count", { method: START, protocol: "grpc" })).toBe(1);
    expect(moved(before, after, "somagent_sessions_started_total", { outcome: "started" })).toBe(1);
    expect(moved(before, after, "somagent_sessions_started_total", { outcome: "existing" })).toBe(1);
    expect(total(open, "somagent_api_streams_in_flight", watchStreams)).toBe(1);
    expect(moved(before, after, "somagent_temporal_calls_total", { operation: "start", outcome: "ok" })).toBe(1);
    expect(moved(before, after, "somagent_temporal_calls_total", { operation: "start", outcome: "already_started" })).toBe(1);
    expect(moved(before, after, "somagent_temporal_calls_total", { operation: "start", outcome: "error" })).toBe(0);
  });
});
