import http2 from "node:http2";
import net from "node:net";
import { describe, expect, it } from "vitest";
import { useApiFixture } from "./api-fixture.js";

const fixture = useApiFixture();

/** Sends raw bytes on a fresh connection and returns everything the server wrote until it closed or went quiet. */
function rawExchange(bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(fixture().port, "127.0.0.1");
    let received = "";
    const done = () => {
      socket.destroy();
      resolve(received);
    };
    socket.setTimeout(2_000, done);
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString("latin1");
      // One whole response is enough: the status line, headers and a JSON body with its length.
      const match = /content-length: (\d+)\r\n[\s\S]*?\r\n\r\n([\s\S]*)$/i.exec(received);
      if (match && Buffer.byteLength(match[2] as string, "latin1") >= Number(match[1])) done();
    });
    socket.on("end", done);
    socket.on("error", reject);
    socket.write(bytes, "latin1");
  });
}

async function h2Request(headers: http2.OutgoingHttpHeaders): Promise<{ status: number; body: string }> {
  const session = http2.connect(fixture().baseUrl);
  try {
    const stream = session.request(headers, { endStream: true });
    const [status, body] = await Promise.all([
      new Promise<number>((resolve) => stream.once("response", (h) => resolve(Number(h[":status"])))),
      new Promise<string>((resolve, reject) => {
        let text = "";
        stream.setEncoding("utf8");
        stream.on("data", (chunk: string) => (text += chunk));
        stream.on("end", () => resolve(text));
        stream.on("error", reject);
      }),
    ]);
    return { status, body };
  } finally {
    session.close();
  }
}

async function expectServing(): Promise<void> {
  const health = await fetch(`${fixture().baseUrl}/health`);
  expect(health.status).toBe(200);
}

describe("the edge, given malformed request targets and authorities", () => {
  it("takes //x:99999/ as the path it is (an empty first segment), not as a URL: 404 NOT_FOUND on HTTP/1.1 and HTTP/2", async () => {
    const response = await rawExchange("GET //x:99999/ HTTP/1.1\r\nHost: x\r\n\r\n");
    expect(response).toMatch(/^HTTP\/1\.1 404 /);
    expect(response).toContain('"status":"NOT_FOUND"');
    const h2 = await h2Request({ ":path": "//x:99999/" });
    expect(h2.status).toBe(404);
    expect(JSON.parse(h2.body)).toMatchObject({ status: "NOT_FOUND" });
    await expectServing();
  });

  it.each([
    ["an absolute-form target with a bad host", "GET http://%zz/ HTTP/1.1\r\nHost: x\r\n\r\n"],
    ["a target that is not a path", "GET x HTTP/1.1\r\nHost: x\r\n\r\n"],
    ["a malformed request line", "GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n"],
    ["a header line without a colon", "GET /health HTTP/1.1\r\nHost: x\r\nbroken header\r\n\r\n"],
    ["a Host header that is not a host", "GET /health HTTP/1.1\r\nHost: [\r\n\r\n"],
    ["a Host header with a path", "GET /health HTTP/1.1\r\nHost: a/b\r\n\r\n"],
    ["no Host header on HTTP/1.0", "POST /somagent.orchestrator.v1.SessionService/Get HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"],
    ["an RPC path with a bad Host header", "POST /somagent.orchestrator.v1.SessionService/Get HTTP/1.1\r\nHost: %zz\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"],
  ])("answers 400 INVALID_ARGUMENT over HTTP/1.1 for %s and keeps serving", async (_name, request) => {
    const response = await rawExchange(request);
    expect(response).toMatch(/^HTTP\/1\.[01] 400 /);
    expect(response).toContain('"status":"INVALID_ARGUMENT"');
    await expectServing();
  });

  it("serves an absolute-form target like its origin-form", async () => {
    const response = await rawExchange("GET http://127.0.0.1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    expect(response).toMatch(/^HTTP\/1\.1 200 /);
    expect(response).toContain('{"status":"ok"}');
  });

  it.each([
    ["an RPC :path with a bad :authority", { ":method": "POST", ":path": "/somagent.orchestrator.v1.SessionService/Get", ":authority": "%zz", "content-type": "application/grpc" }],
  ])("answers 400 INVALID_ARGUMENT over HTTP/2 for %s and keeps serving", async (_name, headers) => {
    const response = await h2Request(headers);
    expect(response.status).toBe(400);
    expect(JSON.parse(response.body)).toMatchObject({ status: "INVALID_ARGUMENT" });
    await expectServing();
  });

  it("leaves an HTTP/2 :path that is not a path to the protocol (stream reset, PROTOCOL_ERROR) and keeps serving", async () => {
    await expect(h2Request({ ":path": "x" })).rejects.toThrow(/NGHTTP2_PROTOCOL_ERROR/);
    await expectServing();
  });
});
