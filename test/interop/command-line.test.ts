/**
 * Command-line callers against the running service: grpcurl (through server
 * reflection, no local .proto files) and curl with the seed's smoke test.
 * Needs only the API and Temporal: a started session stays RUNNING here.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runClient } from "./run-client.js";
import { startInteropStack, type InteropStack } from "./stack.js";
import { tools } from "./tools.js";

let stack: InteropStack;
beforeAll(async () => {
  stack = await startInteropStack();
}, 120_000);
afterAll(async () => {
  await stack?.close();
});

const grpcurl = (...args: string[]) => runClient(tools.grpcurl, ["-plaintext", "-max-time", "30", ...args]);

describe("grpcurl", () => {
  it("lists SessionService, health and reflection through server reflection", async () => {
    const run = await grpcurl(stack.address, "list");
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout.split("\n")).toEqual(
      expect.arrayContaining([
        "somagent.orchestrator.v1.SessionService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
      ]),
    );
  });

  it("describes SessionService's methods from the reflected schema", async () => {
    const run = await grpcurl(stack.address, "describe", "somagent.orchestrator.v1.SessionService");
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("rpc Start ( .somagent.orchestrator.v1.StartRequest ) returns ( .somagent.orchestrator.v1.StartResponse )");
    expect(run.stdout).toContain("rpc Watch ( .somagent.orchestrator.v1.WatchRequest ) returns ( stream .somagent.orchestrator.v1.WatchResponse )");
  });

  it("reports SERVING from the gRPC health service", async () => {
    const run = await grpcurl(stack.address, "grpc.health.v1.Health/Check");
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({ status: "SERVING" });
  });

  it("starts a session and gets it with request bodies encoded from the reflected schema", async () => {
    const start = await grpcurl(
      "-d",
      '{"tenant":"tenant-demo","user":"user-demo","prompt":"kick off a demo","metadata":{"session_id":"sess-grpcurl"}}',
      stack.address,
      "somagent.orchestrator.v1.SessionService/Start",
    );
    expect(start.stderr).toBe("");
    expect(start.code).toBe(0);
    const started = JSON.parse(start.stdout) as { workflowId: string; runId: string; sessionId: string };
    expect(started).toMatchObject({ workflowId: "session-sess-grpcurl", sessionId: "sess-grpcurl" });
    expect(started.runId).toMatch(/^[0-9a-f-]{36}$/);

    const get = await grpcurl("-d", '{"workflow_id":"session-sess-grpcurl"}', stack.address, "somagent.orchestrator.v1.SessionService/Get");
    expect(get.code).toBe(0);
    expect(JSON.parse(get.stdout)).toMatchObject({ workflowId: "session-sess-grpcurl", runId: started.runId, status: "SESSION_STATUS_RUNNING" });
  });

  it("prints NOT_FOUND for an unknown session", async () => {
    const run = await grpcurl("-d", '{"workflow_id":"session-unknown"}', stack.address, "somagent.orchestrator.v1.SessionService/Get");
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain("Code: NotFound");
    expect(run.stderr).toContain("Message: session session-unknown not found");
  });

  it("rejects an invalid request with InvalidArgument naming the field", async () => {
    const run = await grpcurl("-d", '{"tenant":"","user":"u","prompt":"p"}', stack.address, "somagent.orchestrator.v1.SessionService/Start");
    expect(run.stderr).toContain("Code: InvalidArgument");
    expect(run.stderr).toContain("tenant");
  });
});

describe("curl", () => {
  it("runs the seed's smoke test verbatim (port aside): start, then status by workflow id", async () => {
    const port = new URL(stack.baseUrl).port;
    const start = await runClient("bash", [
      "-c",
      `curl -sS -X POST http://localhost:${port}/v1/sessions/start \\
  -H 'Content-Type: application/json' \\
  -d '{
        "tenant": "tenant-demo",
        "user": "user-demo",
        "prompt": "kick off a demo",
        "metadata": {"session_id": "sess-local"}
      }'`,
    ]);
    expect(start.code).toBe(0);
    const started = JSON.parse(start.stdout) as { workflow_id: string; run_id: string };
    expect(started).toMatchObject({ workflow_id: "session-sess-local", session_id: "sess-local" });

    const status = await runClient("bash", ["-c", `curl -sS http://localhost:${port}/v1/sessions/session-sess-local`]);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ workflow_id: "session-sess-local", run_id: started.run_id, status: "SESSION_STATUS_RUNNING" });
  });

  it("gets 404 with the NOT_FOUND error body for an unknown session", async () => {
    const run = await runClient(tools.curl, ["-sS", "-w", "\n%{http_code}", `${stack.baseUrl}/v1/sessions/session-unknown`]);
    const [body, code] = run.stdout.split("\n");
    expect(code).toBe("404");
    expect(JSON.parse(body ?? "")).toMatchObject({ code: 5, status: "NOT_FOUND" });
  });

  it("reads /health", async () => {
    const run = await runClient(tools.curl, ["-sS", "-f", `${stack.baseUrl}/health`]);
    expect(run.code).toBe(0);
  });
});
