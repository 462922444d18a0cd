/**
 * Temporal refusing a call for load reaches the caller as RESOURCE_EXHAUSTED
 * (HTTP 429) with a hint to retry, not as an internal error. The refusal is
 * real: a dev server of this file's own with `frontend.namespaceCount=0`
 * refuses every long-poll of the namespace with "namespace concurrent poller
 * limit exceeded" (what 1,000 Watch streams met before the shared feeds),
 * while Start, a plain call, still succeeds.
 */
import { durationMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { SessionService } from "../../gen/somagent/orchestrator/v1/session_pb.js";
import { OVERLOAD_RETRY_DELAY_MS } from "../../src/api/errors.js";
import { startApiFixture, type ApiFixture } from "./api-fixture.js";
import { startTemporalDevServer } from "./temporal-dev-server.js";

const OVERLOAD_MESSAGE = /^Temporal is over its limits \(watch: namespace concurrent poller limit exceeded\); retry later$/;

/** The RetryInfo's delay as HTTP's Retry-After writes it: whole seconds. */
const RETRY_AFTER_SECONDS = String(Math.ceil(OVERLOAD_RETRY_DELAY_MS / 1000));

let fixture: ApiFixture;
beforeAll(async () => {
  // The namespace admits no long-poll at all.
  fixture = await startApiFixture({}, () => startTemporalDevServer({ "frontend.namespaceCount": "0" }));
}, 90_000);
afterAll(() => fixture?.close(), 30_000);

describe("Temporal over its limits", () => {
  it.each([
    ["gRPC", createGrpcTransport],
    ["the Connect protocol", createConnectTransport],
  ])("answers a Watch over %s with RESOURCE_EXHAUSTED, a message to retry later, a RetryInfo and its Retry-After", async (_protocol, createTransport) => {
    const client = createClient(SessionService, createTransport({ baseUrl: fixture.baseUrl, httpVersion: "2" }));
    const { workflowId } = await client.start({ tenant: "tenant-demo", user: "user-demo", prompt: "p" });
    const error = await (async () => {
      for await (const event of client.watch({ workflowId })) void event;
    })().then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(error?.code).toBe(Code.ResourceExhausted);
    expect(error?.rawMessage).toMatch(OVERLOAD_MESSAGE);
    const [retryInfo] = error?.findDetails(RetryInfoSchema) ?? [];
    expect(retryInfo?.retryDelay && durationMs(retryInfo.retryDelay)).toBe(OVERLOAD_RETRY_DELAY_MS);
    // A stream's error travels in its trailers (gRPC) or end message (Connect), so Retry-After is there, not an HTTP header.
    expect(error?.metadata.get("retry-after")).toBe(RETRY_AFTER_SECONDS);
  });

  it("answers a Watch over REST with 429, the same message and a Retry-After header in seconds", async () => {
    const started = await fetch(`${fixture.baseUrl}/v1/sessions/start`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ tenant: "tenant-demo", user: "user-demo", prompt: "p" }),
    });
    const { workflow_id: workflowId } = (await started.json()) as { workflow_id: string };
    const watch = await fetch(`${fixture.baseUrl}/v1/sessions/${workflowId}:watch`);
    expect(watch.status).toBe(429);
    expect(watch.headers.get("retry-after")).toBe(RETRY_AFTER_SECONDS);
    expect(await watch.json()).toMatchObject({ status: "RESOURCE_EXHAUSTED", message: expect.stringMatching(OVERLOAD_MESSAGE) });
  });
});
