/**
 * The API's /metrics answers questions: after a few calls over different
 * protocols, the counters moved by exactly the calls made.
 */
import { randomUUID } from "node:crypto";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import { SessionService } from "../../gen/somagent/orchestrator/v1/session_pb.js";
import { waitFor } from "../support/wait-for.js";
import { useApiFixture } from "./api-fixture.js";

const fixture = useApiFixture();
const START = "somagent.orchestrator.v1.SessionService/Start";
const GET = "somagent.orchestrator.v1.SessionService/Get";
const WATCH = "somagent.orchestrator.v1.SessionService/Watch";

/** Every sample of the API's /metrics, keyed `name{labels as served}`. */
async function scrape(): Promise<Map<string, number>> {
  const text = await (await fetch(`${fixture().baseUrl}/metrics`)).text();
  const samples = new Map<string, number>();
  for (const line of text.split("\n")) {
    const match = /^(\w+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (match) samples.set(match[1]!, Number(match[2]));
  }
  return samples;
}

/** How much each sample moved between two scrapes (absent before: from 0). */
function moved(before: Map<string, number>, after: Map<string, number>, key: string): number {
  return (after.get(key) ?? 0) - (before.get(key) ?? 0);
}

describe("API /metrics", () => {
  it("counts RPCs by method, protocol and code, sessions started by outcome, and open Watch streams", async () => {
    const before = await scrape();
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
    const open = await scrape();
    watching.abort();
    await stream.next().catch((error: unknown) => expect(ConnectError.from(error).code).toBe(Code.Canceled));
    await waitFor("the Watch stream counted as closed", async () => (await scrape()).get(`somagent_api_streams_in_flight{method="${WATCH}",protocol="grpc"}`) === 0);
    const after = await scrape();

    const rpcs = (method: string, protocol: string, code: string) => moved(before, after, `somagent_api_requests_total{method="${method}",protocol="${protocol}",code="${code}"}`);
    expect(rpcs(START, "grpc", "OK")).toBe(1);
    expect(rpcs(START, "connect", "OK")).toBe(1);
    expect(rpcs(GET, "grpc", "OK")).toBe(1);
    expect(rpcs(GET, "connect", "NOT_FOUND")).toBe(1);
    expect(rpcs(WATCH, "grpc", "CANCELLED")).toBe(1);
    expect(moved(before, after, `somagent_api_request_duration_seconds_count{method="${START}",protocol="grpc"}`)).toBe(1);
    expect(moved(before, after, 'somagent_sessions_started_total{outcome="started"}')).toBe(1);
    expect(moved(before, after, 'somagent_sessions_started_total{outcome="existing"}')).toBe(1);
    expect(open.get(`somagent_api_streams_in_flight{method="${WATCH}",protocol="grpc"}`)).toBe(1);
    expect(moved(before, after, 'somagent_temporal_calls_total{operation="start",outcome="ok"}')).toBe(1);
  });
});
