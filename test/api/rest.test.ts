import http2 from "node:http2";
import { describe, expect, it, vi } from "vitest";
import { waitFor } from "../support/wait-for.js";
import { useApiFixture } from "./api-fixture.js";

// Real servers: allow for a slow machine, but no timing assertions.
vi.setConfig({ testTimeout: 30_000 });

const fixture = useApiFixture();

const post = (path: string, body: string, headers: Record<string, string> = { "content-type": "application/json" }) =>
  fetch(`${fixture().baseUrl}${path}`, { method: "POST", headers, body });
const get = (path: string, headers: Record<string, string> = {}) => fetch(`${fixture().baseUrl}${path}`, { headers });

/** Reads server-sent events from a response body until the stream ends. */
async function* serverSentEvents(response: Response): AsyncGenerator<{ id?: string; event?: string; data: string }> {
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const fields = Object.fromEntries(
        block
          .split("\n")
          .filter((line) => !line.startsWith(":"))
          .map((line) => [line.slice(0, line.indexOf(":")), line.slice(line.indexOf(":") + 2)]),
      ) as { id?: string; event?: string; data?: string };
      if (fields.data !== undefined) yield { ...fields, data: fields.data };
    }
  }
}

describe("REST/JSON transcoding", () => {
  it("serves the seed's smoke test verbatim: start, then status by workflow id, with proto field names", async () => {
    const started = await post(
      "/v1/sessions/start",
      '{"tenant":"tenant-demo","user":"user-demo","prompt":"kick off a demo","metadata":{"session_id":"sess-local"}}',
    );
    expect(started.status).toBe(200);
    expect(started.headers.get("content-type")).toMatch(/^application\/json/);
    const body = (await started.json()) as Record<string, string>;
    expect(body).toMatchObject({ workflow_id: "session-sess-local", session_id: "sess-local", task_queue: fixture().connection.taskQueue });
    expect(body.run_id).toMatch(/^[0-9a-f-]{36}$/);

    const status = await get("/v1/sessions/session-sess-local");
    expect(status.status).toBe(200);
    expect(await status.json()).toMatchObject({ workflow_id: "session-sess-local", run_id: body.run_id, status: "SESSION_STATUS_RUNNING" });

    const again = (await (await post("/v1/sessions/start", '{"tenant":"tenant-demo","user":"user-demo","prompt":"again","metadata":{"session_id":"sess-local"}}')).json()) as Record<string, string>;
    expect(again.run_id).toBe(body.run_id);
  });

  it("answers 404 NOT_FOUND as google.rpc.Status JSON for an unknown session", async () => {
    const response = await get("/v1/sessions/session-unknown");
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ code: 5, status: "NOT_FOUND", message: "session session-unknown not found", details: [] });
  });

  it.each([
    ["a missing field", '{"user":"u","prompt":"p"}', "tenant: value is required"],
    ["a wrong type", '{"tenant":5,"user":"u","prompt":"p"}', "tenant"],
    ["an unknown field", '{"tenant":"t","user":"u","prompt":"p","bogus":1}', 'key "bogus" is unknown'],
    ["invalid JSON", '{"tenant":', "request body is not valid JSON"],
    ["a body that is not an object", "[1,2]", "request body must be a JSON object"],
    ["a malformed session_id", '{"tenant":"t","user":"u","prompt":"p","metadata":{"session_id":"a b"}}', "metadata.session_id must be"],
  ])("answers 400 INVALID_ARGUMENT for %s, naming the problem", async (_case, body, fragment) => {
    const response = await post("/v1/sessions/start", body);
    expect(response.status).toBe(400);
    const error = (await response.json()) as { code: number; status: string; message: string };
    expect(error).toMatchObject({ code: 3, status: "INVALID_ARGUMENT" });
    expect(error.message).toContain(fragment);
    expect(error.message).not.toMatch(/\n\s+at /);
  });

  it("adds a google.rpc.BadRequest detail listing each violated field", async () => {
    const response = await post("/v1/sessions/start", "{}");
    const error = (await response.json()) as { message: string; details: { "@type": string; fieldViolations: { field: string }[] }[] };
    expect(error.message).toBe("tenant: value is required; user: value is required; prompt: value is required");
    expect(error.details[0]?.["@type"]).toBe("type.googleapis.com/google.rpc.BadRequest");
    expect(error.details[0]?.fieldViolations.map((v) => v.field)).toEqual(["tenant", "user", "prompt"]);
  });

  it.each([
    ["a duplicate key (last would win)", Buffer.from('{"tenant":"bad tenant!","tenant":"tenant-demo","user":"u","prompt":"p","metadata":{"session_id":"rest-dup"}}'), "tenant", "tenant: duplicate JSON key"],
    ["a nested duplicate key", Buffer.from('{"tenant":"t","user":"u","prompt":"p","metadata":{"session_id":"rest-dup","session_id":"rest-dup-2"}}'), "metadata.session_id", "metadata.session_id: duplicate JSON key"],
    [
      "invalid UTF-8 (would become U+FFFD)",
      Buffer.concat([Buffer.from('{"tenant":"t","user":"u","metadata":{"session_id":"rest-utf8"},"prompt":"ab'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]),
      "prompt",
      "prompt: invalid UTF-8 at byte 75",
    ],
  ])("refuses %s with 400 INVALID_ARGUMENT naming the field, and starts no session", async (_case, body, field, message) => {
    const response = await fetch(`${fixture().baseUrl}/v1/sessions/start`, { method: "POST", headers: { "content-type": "application/json" }, body });
    expect(response.status).toBe(400);
    const error = (await response.json()) as { status: string; message: string; details: { fieldViolations: { field: string }[] }[] };
    expect(error).toMatchObject({ status: "INVALID_ARGUMENT", message });
    expect(error.details[0]?.fieldViolations[0]?.field).toBe(field);
    for (const id of ["rest-dup", "rest-dup-2", "rest-utf8"]) expect((await get(`/v1/sessions/session-${id}`)).status).toBe(404);
  });

  it("validates path parameters and rejects unknown query parameters", async () => {
    const badId = await get("/v1/sessions/-bad-id");
    expect(badId.status).toBe(400);
    expect(((await badId.json()) as { message: string }).message).toContain("workflow_id");
    const unknownParam = await get("/v1/sessions/session-x?colour=blue");
    expect(unknownParam.status).toBe(400);
    expect(((await unknownParam.json()) as { message: string }).message).toContain('"colour"');
  });

  it("answers 413 for a body over the limit, 415 for a wrong content type, 404 for an unknown path, 405 for a wrong method", async () => {
    const big = await post("/v1/sessions/start", JSON.stringify({ tenant: "t", user: "u", prompt: "a".repeat(300 * 1024) }));
    expect(big.status).toBe(413);
    expect(await big.json()).toMatchObject({ code: 8, status: "RESOURCE_EXHAUSTED" });
    const plain = await post("/v1/sessions/start", "tenant=t", { "content-type": "text/plain" });
    expect(plain.status).toBe(415);
    expect(await plain.json()).toMatchObject({ status: "INVALID_ARGUMENT" });
    const unknown = await get("/v2/nothing/here");
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ code: 5, status: "NOT_FOUND", message: "no route for GET /v2/nothing/here" });
    const wrongMethod = await fetch(`${fixture().baseUrl}/v1/sessions/session-x`, { method: "DELETE" });
    expect(wrongMethod.status).toBe(405);
  });

  it.each([
    ["DELETE", "/v1/sessions/session-x", "GET"],
    ["PUT", "/v1/sessions/session-x:watch", "GET"],
    // `start` is also a workflow id the Get template takes: both methods serve this path.
    ["DELETE", "/v1/sessions/start", "GET, POST"],
  ])("answers %s %s with 405 UNIMPLEMENTED and Allow: %s", async (method, path, allow) => {
    const response = await fetch(`${fixture().baseUrl}${path}`, { method });
    expect(response.status).toBe(405);
    expect(response.headers.get("allow")).toBe(allow);
    expect(await response.json()).toMatchObject({ code: 12, status: "UNIMPLEMENTED", message: `method ${method} is not allowed on ${path}` });
  });

  it.each([
    ["Get", "/v1/sessions/session-path-a?workflow_id=session-path-b"],
    ["Get", "/v1/sessions/session-path-a?workflowId=session-path-b"],
    ["Watch", "/v1/sessions/session-path-a:watch?workflow_id=session-path-b"],
  ])("refuses a query parameter naming the field the path binds (%s %s): 400 naming the field, and never serves the other session", async (rpc, path) => {
    await post("/v1/sessions/start", '{"tenant":"t","user":"u","prompt":"p","metadata":{"session_id":"path-b"}}');
    const response = await get(path);
    expect(response.status).toBe(400);
    const error = (await response.json()) as { code: number; status: string; message: string };
    expect(error).toMatchObject({ code: 3, status: "INVALID_ARGUMENT" });
    expect(error.message).toContain("field workflow_id is bound by the path");
    expect(JSON.stringify(error)).not.toContain("SESSION_STATUS");
    // Refused while binding, before the interceptors, yet observed like every call: counted and logged once.
    const metrics = await (await get("/metrics")).text();
    expect(metrics).toMatch(new RegExp(`somagent_api_requests_total\\{method="somagent.orchestrator.v1.SessionService/${rpc}",protocol="rest",code="INVALID_ARGUMENT"\\} \\d+`));
    const key = path.slice(path.indexOf("?") + 1, path.indexOf("="));
    const line = fixture()
      .logs.map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.message === "rpc" && l.method === `somagent.orchestrator.v1.SessionService/${rpc}` && String(l.error).includes(`"${key}"`));
    expect(line).toMatchObject({ protocol: "rest", code: "INVALID_ARGUMENT", level: "info" });
    expect(typeof line?.durationMs).toBe("number");
  });

  it("answers 400 naming the field for a path value that is not valid percent-encoding", async () => {
    const response = await get("/v1/sessions/session-%zz");
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ status: "INVALID_ARGUMENT", message: "workflow_id: the path segment is not valid percent-encoding" });
  });

  it("decodes percent-escapes in a path value before using it", async () => {
    const response = await get("/v1/sessions/session-%61bsent");
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ status: "NOT_FOUND", message: "session session-absent not found" });
  });

  it("streams Watch as server-sent events with the sequence as id, ends after the terminal event, and resumes from Last-Event-ID", async () => {
    await post("/v1/sessions/start", '{"tenant":"t","user":"u","prompt":"p","metadata":{"session_id":"sse"}}');
    const response = await get("/v1/sessions/session-sse:watch", { accept: "text/event-stream" });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const events: { id?: string; event?: string; data: string }[] = [];
    const reading = (async () => {
      for await (const event of serverSentEvents(response)) events.push(event);
    })();
    await waitFor(() => events.length === 1);
    expect(events[0]?.id).toBe("1");
    expect(JSON.parse(events[0]!.data)).toMatchObject({ sequence: "1", started: { session_id: "sse", tenant: "t", user: "u", model: "somagent-demo" } });
    await fixture().connection.client.workflow.getHandle("session-sse").terminate("stop");
    await reading;
    expect(events.map((e) => e.event ?? "message")).toEqual(["message", "message", "end"]);
    const failedId = events[1]!.id!;
    expect(JSON.parse(events[1]!.data)).toMatchObject({ sequence: failedId, failed: { reason: "terminated: stop" } });

    const resumed: string[] = [];
    for await (const event of serverSentEvents(await get("/v1/sessions/session-sse:watch", { "last-event-id": "1" }))) {
      if (event.id) resumed.push(event.id);
    }
    expect(resumed).toEqual([failedId]);
    const byQuery: string[] = [];
    for await (const event of serverSentEvents(await get("/v1/sessions/session-sse:watch?after_sequence=1"))) {
      if (event.id) byQuery.push(event.id);
    }
    expect(byQuery).toEqual([failedId]);
    // Nothing after the last event: 204 tells EventSource to stop reconnecting.
    expect((await get("/v1/sessions/session-sse:watch", { "last-event-id": failedId })).status).toBe(204);
  });

  it("serves the same REST routes over HTTP/2 with prior knowledge (h2c)", async () => {
    await post("/v1/sessions/start", '{"tenant":"t","user":"u","prompt":"p","metadata":{"session_id":"h2c"}}');
    const session = http2.connect(fixture().baseUrl);
    try {
      const response = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const stream = session.request({ ":method": "GET", ":path": "/v1/sessions/session-h2c" });
        let status = 0;
        let body = "";
        stream.on("response", (headers) => (status = Number(headers[":status"])));
        stream.on("data", (chunk: Buffer) => (body += chunk.toString()));
        stream.on("end", () => resolve({ status, body }));
        stream.on("error", reject);
        stream.end();
      });
      expect(response.status).toBe(200);
      expect(JSON.parse(response.body)).toMatchObject({ workflow_id: "session-h2c", status: "SESSION_STATUS_RUNNING" });
    } finally {
      session.close();
    }
  });

  it("answers a Watch of an unknown session with 404 before any event", async () => {
    const response = await get("/v1/sessions/session-nobody:watch");
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ status: "NOT_FOUND" });
  });
});

describe("health, readiness, metrics, logs and CORS", () => {
  it("reports liveness on /health and readiness on /ready", async () => {
    expect(await (await get("/health")).json()).toEqual({ status: "ok" });
    const ready = await get("/ready");
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ ready: true, temporal: "reachable", shuttingDown: false });
  });

  it("exposes Prometheus metrics: requests by method, protocol and code, latency, open streams and process metrics", async () => {
    await get("/v1/sessions/session-unknown");
    const response = await get("/metrics");
    expect(response.headers.get("content-type")).toMatch(/^text\/plain/);
    const text = await response.text();
    expect(text).toContain('somagent_api_requests_total{method="somagent.orchestrator.v1.SessionService/Get",protocol="rest",code="NOT_FOUND"}');
    expect(text).toMatch(/somagent_api_requests_total\{method="somagent.orchestrator.v1.SessionService\/Start",protocol="rest",code="OK"\} \d+/);
    expect(text).toContain("somagent_api_request_duration_seconds_bucket");
    expect(text).toContain("somagent_api_streams_in_flight");
    expect(text).toContain("somagent_temporal_calls_total");
    expect(text).toContain("process_cpu_user_seconds_total");
  });

  it("writes one JSON log line per call with method, protocol, code and duration", async () => {
    await get("/v1/sessions/session-logged");
    const line = fixture().logs
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.message === "rpc" && l.method === "somagent.orchestrator.v1.SessionService/Get" && l.code === "NOT_FOUND");
    expect(line).toMatchObject({ protocol: "rest", level: "info" });
    expect(typeof line?.durationMs).toBe("number");
  });

  it("answers CORS preflights for allowed origins with the Connect and gRPC-Web headers, and refuses others", async () => {
    const preflight = await fetch(`${fixture().baseUrl}/somagent.orchestrator.v1.SessionService/Start`, {
      method: "OPTIONS",
      headers: { origin: "http://app.example", "access-control-request-method": "POST", "access-control-request-headers": "content-type,connect-protocol-version,x-grpc-web" },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe("http://app.example");
    expect(preflight.headers.get("access-control-allow-headers")).toMatch(/Connect-Protocol-Version/);
    expect(preflight.headers.get("access-control-allow-headers")).toMatch(/X-Grpc-Web/);
    expect(preflight.headers.get("access-control-allow-methods")).toMatch(/POST/);

    const simple = await get("/v1/sessions/session-unknown", { origin: "http://app.example" });
    expect(simple.headers.get("access-control-allow-origin")).toBe("http://app.example");
    expect(simple.headers.get("access-control-expose-headers")).toMatch(/Grpc-Status/);

    const denied = await fetch(`${fixture().baseUrl}/v1/sessions/start`, {
      method: "OPTIONS",
      headers: { origin: "http://evil.example", "access-control-request-method": "POST" },
    });
    expect(denied.status).toBe(403);
    expect(denied.headers.get("access-control-allow-origin")).toBeNull();
  });
});
