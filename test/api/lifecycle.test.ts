import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import net from "node:net";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { describe, expect, it, vi } from "vitest";
import { Health, HealthCheckResponse_ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";
import { SessionService } from "../../gen/somagent/orchestrator/v1/session_pb.js";
import { createServer } from "../../src/api/server.js";
import { createMetricsRegistry } from "../../src/shared/metrics.js";
import { waitFor } from "../support/wait-for.js";
import { useApiFixture } from "./api-fixture.js";
import { freePort } from "./temporal-dev-server.js";

// Real servers, restarted on purpose: allow for a slow machine, but no timing assertions.
vi.setConfig({ testTimeout: 60_000 });

const fixture = useApiFixture();

const startBody = (sessionId: string) =>
  JSON.stringify({ tenant: "tenant-demo", user: "user-demo", prompt: "p", metadata: { session_id: sessionId } });

describe("API while Temporal is down", () => {
  it("stays live, reports not ready, answers UNAVAILABLE on every protocol, and recovers when Temporal returns", async () => {
    await fixture().temporal.stop();
    try {
      expect((await fetch(`${fixture().baseUrl}/health`)).status).toBe(200);
      await waitFor(async () => (await fetch(`${fixture().baseUrl}/ready`)).status === 503);
      expect(await (await fetch(`${fixture().baseUrl}/ready`)).json()).toMatchObject({ ready: false, temporal: "unreachable" });

      const rest = await fetch(`${fixture().baseUrl}/v1/sessions/start`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: startBody("while-down"),
      });
      expect(rest.status).toBe(503);
      const error = (await rest.json()) as { code: number; status: string; message: string };
      expect(error).toMatchObject({ code: 14, status: "UNAVAILABLE" });
      expect(error.message).toContain("Temporal is unreachable");

      for (const transport of [
        createConnectTransport({ baseUrl: fixture().baseUrl, httpVersion: "1.1" }),
        createGrpcTransport({ baseUrl: fixture().baseUrl }),
      ]) {
        const failure = await createClient(SessionService, transport).get({ workflowId: "session-x" }).catch((e: unknown) => e);
        expect(ConnectError.from(failure).code).toBe(Code.Unavailable);
      }
      const health = createClient(Health, createGrpcTransport({ baseUrl: fixture().baseUrl }));
      expect((await health.check({})).status).toBe(HealthCheckResponse_ServingStatus.NOT_SERVING);
    } finally {
      await fixture().temporal.start();
    }
    await waitFor(async () => (await fetch(`${fixture().baseUrl}/ready`)).status === 200, 30_000);
    const recovered = await fetch(`${fixture().baseUrl}/v1/sessions/start`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: startBody("after-recovery"),
    });
    expect(recovered.status).toBe(200);
    expect(await recovered.json()).toMatchObject({ workflow_id: "session-after-recovery" });
  });
});

describe("ApiServer.shutdown", () => {
  it("turns not ready, lets an in-flight unary call finish, ends open streams cleanly and closes the port", async () => {
    const server = createServer({
      sessions: fixture().sessions,
      registry: createMetricsRegistry({ processMetrics: false }),
      corsAllowedOrigins: [],
      shutdownGraceMs: 5_000,
      logger: { info() {}, warn() {}, error() {} },
    });
    const { port } = await server.listen(0);
    const baseUrl = `http://127.0.0.1:${port}`;
    await waitFor(() => server.readiness.refresh());
    await fetch(`${baseUrl}/v1/sessions/start`, { method: "POST", headers: { "content-type": "application/json" }, body: startBody("in-process-drain") });

    const health = createClient(Health, createGrpcTransport({ baseUrl }));
    const healthUpdates: HealthCheckResponse_ServingStatus[] = [];
    const healthStream = (async () => {
      for await (const update of health.watch({})) healthUpdates.push(update.status);
    })();
    const watchEvents: string[] = [];
    const watchStream = (async () => {
      const client = createClient(SessionService, createConnectTransport({ baseUrl, httpVersion: "1.1" }));
      for await (const event of client.watch({ workflowId: "session-in-process-drain" })) watchEvents.push(event.event.case ?? "");
    })();
    await waitFor(() => healthUpdates.length === 1 && watchEvents.length === 1);

    // A unary call in flight when shutdown begins: headers received (100 Continue), body not yet sent.
    const socket = net.connect(port, "127.0.0.1");
    const body = startBody("in-flight-at-shutdown");
    let received = "";
    socket.on("data", (chunk: Buffer) => (received += chunk.toString()));
    socket.write(
      `POST /v1/sessions/start HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`,
    );
    await waitFor(() => received.includes("100 Continue"));

    const stopping = server.shutdown();
    expect(server.readiness.isReady()).toBe(false);
    socket.write(body);
    await Promise.all([healthStream, watchStream, stopping]);
    await waitFor(() => received.includes("workflow_id"));
    expect(received).toMatch(/HTTP\/1.1 200 OK[\s\S]*"workflow_id":"session-in-flight-at-shutdown"/);
    socket.destroy();
    expect(healthUpdates[0]).toBe(HealthCheckResponse_ServingStatus.SERVING);
    expect(watchEvents).toEqual(["started"]);
    await expect(fetch(`${baseUrl}/health`)).rejects.toThrow();
  });
});

describe("API process on SIGTERM", () => {
  it("turns not ready, ends open Watch streams cleanly (gRPC and SSE) and exits 0", async () => {
    const port = await freePort();
    const child = spawn(process.execPath, ["--import", "tsx", "src/api/main.ts"], {
      env: {
        ...process.env,
        HOST: "127.0.0.1",
        PORT: String(port),
        TEMPORAL_TARGET_HOST: fixture().temporal.address,
        TEMPORAL_TASK_QUEUE: "api-sigterm-test",
        PAYLOAD_CODEC_KEYS: `k1:${randomBytes(32).toString("base64")}`,
        SHUTDOWN_GRACE_MS: "5000",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    const output: string[] = [];
    child.stdout.on("data", (chunk: Buffer) => output.push(chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => output.push(chunk.toString()));
    const baseUrl = `http://127.0.0.1:${port}`;
    try {
      await waitFor(async () => (await fetch(`${baseUrl}/ready`).catch(() => undefined))?.status === 200, 30_000);
      const client = createClient(SessionService, createGrpcTransport({ baseUrl }));
      const { workflowId } = await client.start({ tenant: "t", user: "u", prompt: "p", metadata: { session_id: "sigterm" } });

      const grpcEvents: string[] = [];
      const grpcStream = (async () => {
        for await (const event of client.watch({ workflowId })) grpcEvents.push(event.event.case ?? "");
      })();
      const sse = await fetch(`${baseUrl}/v1/sessions/${workflowId}:watch`);
      const sseBody = sse.text();
      await waitFor(() => grpcEvents.length === 1);

      child.kill("SIGTERM");
      await grpcStream; // ends without an error
      expect(grpcEvents).toEqual(["started"]);
      expect(await sseBody).toMatch(/^id: 1\ndata: .*"started"/);
      expect(await exited).toBe(0);
      await expect(fetch(`${baseUrl}/health`)).rejects.toThrow();
      expect(output.join("")).toContain('"message":"shutting down"');
    } finally {
      child.kill("SIGKILL");
    }
  });
});
