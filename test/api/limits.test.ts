/**
 * The port's limits, each reached by a real slow or greedy client over a
 * real socket: every limit ends with its own clear answer, never a hang.
 */
import http2 from "node:http2";
import net from "node:net";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, describe, expect, it } from "vitest";
import { SessionService } from "../../gen/somagent/orchestrator/v1/session_pb.js";
import { DEFAULT_EDGE_LIMITS, type EdgeLimits } from "../../src/config.js";
import { createServer, type ApiServer } from "../../src/api/server.js";
import { createMetricsRegistry } from "../../src/shared/metrics.js";
import { waitFor } from "../support/wait-for.js";
import { useApiFixture } from "./api-fixture.js";

const fixture = useApiFixture();
const servers: ApiServer[] = [];
afterAll(() => Promise.all(servers.map((server) => server.shutdown())));

/** An API on the fixture's Temporal with the given limits; returns its base URL and port. */
async function serverWith(limits: Partial<EdgeLimits>): Promise<{ baseUrl: string; port: number }> {
  const server = createServer({
    sessions: fixture().sessions,
    registry: createMetricsRegistry({ processMetrics: false }),
    corsAllowedOrigins: [],
    shutdownGraceMs: 1_000,
    logger: { info() {}, warn() {}, error() {} },
    limits: { ...DEFAULT_EDGE_LIMITS, ...limits },
  });
  servers.push(server);
  const { port } = await server.listen(0);
  return { baseUrl: `http://127.0.0.1:${port}`, port };
}

/** A raw connection: what the server wrote, and a promise that settles when it closed the connection. */
function rawConnection(port: number) {
  const socket = net.connect(port, "127.0.0.1");
  const connection = { socket, received: "", closed: new Promise<void>((resolve) => socket.once("close", () => resolve())) };
  socket.on("data", (chunk: Buffer) => (connection.received += chunk.toString("latin1")));
  socket.on("error", () => undefined);
  return connection;
}

const startBody = (sessionId: string) =>
  JSON.stringify({ tenant: "tenant-demo", user: "user-demo", prompt: "p", metadata: { session_id: sessionId } });

describe("timeouts at the edge", () => {
  it("closes a connection that sends nothing, or half an HTTP/2 preface, within the header timeout", async () => {
    const { port } = await serverWith({ headersTimeoutMs: 300 });
    const silent = rawConnection(port);
    const halfPreface = rawConnection(port);
    halfPreface.socket.write("PRI * HTTP/2.0\r\n");
    await Promise.all([silent.closed, halfPreface.closed]);
    expect(silent.received).toBe("");
  });

  it("answers 408 DEADLINE_EXCEEDED to half an HTTP/1.1 header block and closes the connection", async () => {
    const { port } = await serverWith({ headersTimeoutMs: 300 });
    const slow = rawConnection(port);
    slow.socket.write("POST /v1/sessions/start HTTP/1.1\r\nHost: x\r\nContent-Type: app");
    await slow.closed;
    expect(slow.received).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(slow.received).toContain('"status":"DEADLINE_EXCEEDED"');
    expect(slow.received).toContain("API_HEADERS_TIMEOUT_MS");
  });

  it("answers 408 DEADLINE_EXCEEDED to half an HTTP/1.1 body and closes the connection", async () => {
    const { port } = await serverWith({ headersTimeoutMs: 300, requestTimeoutMs: 600 });
    const slow = rawConnection(port);
    slow.socket.write("POST /v1/sessions/start HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"tenant\":");
    await slow.closed;
    expect(slow.received).toMatch(/^HTTP\/1\.1 408 /);
    expect(slow.received).toContain('"status":"DEADLINE_EXCEEDED"');
  });

  it("closes an HTTP/1.1 connection idle between requests after the keep-alive timeout", async () => {
    const { port } = await serverWith({ keepAliveTimeoutMs: 300 });
    const idle = rawConnection(port);
    idle.socket.write("GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    await idle.closed;
    expect(idle.received).toMatch(/^HTTP\/1\.1 200 /);
  });

  it("answers 408 to an HTTP/2 request whose body stops halfway, and resets the stream", async () => {
    const { baseUrl } = await serverWith({ headersTimeoutMs: 500, requestTimeoutMs: 500 });
    const session = http2.connect(baseUrl);
    try {
      const stream = session.request({ ":method": "POST", ":path": "/v1/sessions/start", "content-type": "application/json" });
      stream.write('{"tenant":');
      const status = await new Promise<number>((resolve) => stream.once("response", (headers) => resolve(Number(headers[":status"]))));
      let body = "";
      stream.on("data", (chunk: Buffer) => (body += chunk.toString()));
      await new Promise<void>((resolve) => stream.once("close", () => resolve()));
      expect(status).toBe(408);
      expect(JSON.parse(body)).toMatchObject({ status: "DEADLINE_EXCEEDED" });
    } finally {
      session.destroy();
    }
  });

  it("closes (GOAWAY) an HTTP/2 connection with no open stream after the idle timeout", async () => {
    const { baseUrl } = await serverWith({ idleTimeoutMs: 300 });
    const session = http2.connect(baseUrl);
    const goaway = new Promise<void>((resolve) => session.once("goaway", () => resolve()));
    const closed = new Promise<void>((resolve) => session.once("close", () => resolve()));
    session.on("error", () => undefined);
    await Promise.all([goaway, closed]);
  });
});

describe("caps at the edge", () => {
  it("answers RESOURCE_EXHAUSTED (429) on connections past API_MAX_CONNECTIONS, over HTTP/1.1 and HTTP/2, and serves again once one closes", async () => {
    const { port, baseUrl } = await serverWith({ maxConnections: 2 });
    const held = [rawConnection(port), rawConnection(port)];
    await waitFor(() => held.every((c) => c.socket.readyState === "open"));
    const extra = rawConnection(port);
    extra.socket.write("GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    await extra.closed;
    expect(extra.received).toMatch(/^HTTP\/1\.1 429 /);
    expect(extra.received).toContain("API_MAX_CONNECTIONS");

    const session = http2.connect(baseUrl);
    session.on("error", () => undefined);
    const stream = session.request({ ":path": "/health" }, { endStream: true });
    stream.resume();
    const status = await new Promise<number>((resolve) => stream.once("response", (headers) => resolve(Number(headers[":status"]))));
    expect(status).toBe(429);
    await new Promise<void>((resolve) => session.once("close", () => resolve()));

    for (const connection of held) connection.socket.destroy();
    await Promise.all(held.map((c) => c.closed));
    expect((await fetch(`${baseUrl}/health`)).status).toBe(200);
  });

  it("refuses a caller's server stream past API_MAX_STREAMS_PER_CALLER with RESOURCE_EXHAUSTED, and takes it once one closes", async () => {
    const { baseUrl } = await serverWith({ maxStreamsPerCaller: 2 });
    const client = createClient(SessionService, createGrpcTransport({ baseUrl }));
    const { workflowId } = await client.start({ tenant: "t", user: "u", prompt: "p", metadata: { session_id: "stream-cap" } });
    const first = openWatch(client, workflowId);
    const second = openWatch(client, workflowId);
    expect(await Promise.all([first.firstEvent, second.firstEvent])).toEqual(["started", "started"]);

    const refused = await openWatch(client, workflowId).firstEvent.catch((error: unknown) => ConnectError.from(error));
    expect(refused).toBeInstanceOf(ConnectError);
    expect((refused as ConnectError).code).toBe(Code.ResourceExhausted);
    expect((refused as ConnectError).rawMessage).toContain("API_MAX_STREAMS_PER_CALLER");

    first.close();
    await waitFor(async () => (await openWatch(client, workflowId).firstEvent.catch(() => "refused")) === "started");
    second.close();
  });

  it("ends a server stream cleanly at API_MAX_STREAM_AGE_MS, so the client resumes from its last sequence", async () => {
    const { baseUrl } = await serverWith({ maxStreamAgeMs: 500 });
    const client = createClient(SessionService, createConnectTransport({ baseUrl, httpVersion: "1.1" }));
    const { workflowId } = await client.start({ tenant: "t", user: "u", prompt: "p", metadata: { session_id: "stream-age" } });
    const sequences: bigint[] = [];
    for await (const event of client.watch({ workflowId })) sequences.push(event.sequence);
    expect(sequences).toEqual([1n]);
    // Resumed after the last sequence: nothing new yet, and again a clean end at the age limit.
    const resumed: bigint[] = [];
    for await (const event of client.watch({ workflowId, afterSequence: 1n })) resumed.push(event.sequence);
    expect(resumed).toEqual([]);
  });
});

/** Opens a Watch: the case of its first event (or the call's error), and a way to close it. */
function openWatch(client: ReturnType<typeof createClient<typeof SessionService>>, workflowId: string) {
  const controller = new AbortController();
  const iterator = client.watch({ workflowId }, { signal: controller.signal })[Symbol.asyncIterator]();
  const firstEvent = iterator.next().then((result) => (result.done ? "ended" : (result.value.event.case ?? "")));
  // Streams that were opened only to be refused are closed when the test's server shuts down.
  return { firstEvent, close: () => controller.abort() };
}
