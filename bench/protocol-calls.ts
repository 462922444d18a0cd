/**
 * The four wire protocols of the API, spoken by one plain `node:http2` client
 * (h2c, prior knowledge), so every protocol and every floor is driven by the
 * same code and only the server differs. A call is its request bytes; an
 * answer is checked for success the way its protocol reports it.
 */
import http2 from "node:http2";
import { create, toBinary, toJsonString, type MessageInitShape } from "@bufbuild/protobuf";
import {
  GetRequestSchema,
  StartRequestSchema,
  WatchRequestSchema,
} from "../gen/somagent/orchestrator/v1/session_pb.js";

export type Protocol = "grpc" | "grpc-web" | "connect" | "rest";

/** One request, as bytes on the wire. */
export interface Call {
  method: "GET" | "POST";
  path: string;
  headers: Record<string, string>;
  body: Uint8Array | undefined;
}

/** What came back: headers, the whole body, trailers. */
export interface Answer {
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
  trailers: http2.IncomingHttpHeaders;
}

const SERVICE = "/somagent.orchestrator.v1.SessionService";
const CALL_TIMEOUT_MS = 30_000;

/** A gRPC length-prefixed message (not compressed). */
export function frame(message: Uint8Array): Uint8Array {
  const framed = new Uint8Array(5 + message.length);
  new DataView(framed.buffer).setUint32(1, message.length);
  framed.set(message, 5);
  return framed;
}

/** The demo session the benchmarks start: tenant-demo/user-demo, which the policy allows. */
export function demoStart(sessionId: string): MessageInitShape<typeof StartRequestSchema> {
  return { tenant: "tenant-demo", user: "user-demo", prompt: "kick off a demo", metadata: { session_id: sessionId } };
}

function rpc(protocol: Exclude<Protocol, "rest">, method: string, binary: Uint8Array, json: string): Call {
  const path = `${SERVICE}/${method}`;
  switch (protocol) {
    case "grpc":
      return { method: "POST", path, headers: { "content-type": "application/grpc", te: "trailers" }, body: frame(binary) };
    case "grpc-web":
      return { method: "POST", path, headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" }, body: frame(binary) };
    case "connect":
      return { method: "POST", path, headers: { "content-type": "application/json", "connect-protocol-version": "1" }, body: Buffer.from(json) };
  }
}

/** `Start` of a new demo session over `protocol` (REST: `POST /v1/sessions/start`). */
export function startCall(protocol: Protocol, sessionId: string): Call {
  const request = create(StartRequestSchema, demoStart(sessionId));
  const json = toJsonString(StartRequestSchema, request);
  if (protocol === "rest") return { method: "POST", path: "/v1/sessions/start", headers: { "content-type": "application/json" }, body: Buffer.from(json) };
  return rpc(protocol, "Start", toBinary(StartRequestSchema, request), json);
}

/** `Get` of a session over `protocol` (REST: `GET /v1/sessions/{id}`). */
export function getCall(protocol: Protocol, workflowId: string): Call {
  if (protocol === "rest") return { method: "GET", path: `/v1/sessions/${workflowId}`, headers: {}, body: undefined };
  const request = create(GetRequestSchema, { workflowId });
  return rpc(protocol, "Get", toBinary(GetRequestSchema, request), toJsonString(GetRequestSchema, request));
}

/** A gRPC `Watch` of a session from its first event. */
export function watchCall(workflowId: string): Call {
  return rpc("grpc", "Watch", toBinary(WatchRequestSchema, create(WatchRequestSchema, { workflowId })), "");
}

/** Throws unless `answer` reports success in its protocol's terms. */
export function expectSuccess(protocol: Protocol, call: Call, answer: Answer): void {
  const status = Number(answer.headers[":status"]);
  let failed = status !== 200;
  if (protocol === "grpc") failed ||= (answer.trailers["grpc-status"] ?? answer.headers["grpc-status"]) !== "0";
  // gRPC-Web carries its trailers in the body's last frame.
  if (protocol === "grpc-web") failed ||= !/grpc-status:\s*0\r?\n/.test(answer.body.toString("latin1"));
  if (failed) throw new Error(`${protocol} ${call.method} ${call.path}: HTTP ${status} ${JSON.stringify(answer.trailers)} ${answer.body.toString("utf8").slice(0, 300)}`);
}

/** One h2c connection to `origin`, reconnected when the server closes it. */
export interface H2Client {
  request(call: Call): Promise<Answer>;
  /**
   * Opens a call left open (Watch): resolves true once the first `bytes` of its
   * body arrived, false when it closed before; never rejects.
   */
  open(call: Call, bytes: number): Promise<boolean>;
  /** Calls opened with {@link open} and not closed yet. */
  heldStreams(): number;
  close(): Promise<void>;
}

export function createH2Client(origin: string): H2Client {
  let session: http2.ClientHttp2Session | undefined;
  // Calls opened with open() (Watch); closing the client cancels them, else the session's close would wait for them forever.
  const held = new Set<http2.ClientHttp2Stream>();
  const connected = () => {
    if (!session || session.closed || session.destroyed) {
      session = http2.connect(origin);
      // Errors surface on the streams; an idle session's error must not crash the bench.
      session.on("error", () => {});
    }
    return session;
  };
  const send = (call: Call) => {
    const stream = connected().request({ ":method": call.method, ":path": call.path, ...call.headers }, { endStream: call.body === undefined });
    stream.setTimeout(CALL_TIMEOUT_MS, () => stream.close(http2.constants.NGHTTP2_CANCEL));
    if (call.body !== undefined) stream.end(call.body);
    return stream;
  };
  return {
    request(call) {
      return new Promise((resolve, reject) => {
        const stream = send(call);
        const chunks: Buffer[] = [];
        let headers: http2.IncomingHttpHeaders = {};
        let trailers: http2.IncomingHttpHeaders = {};
        stream.on("response", (h) => (headers = h));
        stream.on("trailers", (t) => (trailers = t));
        stream.on("data", (chunk: Buffer) => chunks.push(chunk));
        stream.on("error", reject);
        stream.on("close", () => {
          if (stream.rstCode && stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR) reject(new Error(`${call.path}: stream reset (${stream.rstCode})`));
          else resolve({ headers, body: Buffer.concat(chunks), trailers });
        });
      });
    },
    open(call, bytes) {
      return new Promise((resolve) => {
        const stream = send(call);
        stream.setTimeout(0);
        held.add(stream);
        let received = 0;
        stream.on("data", (chunk: Buffer) => {
          received += chunk.length;
          if (received >= bytes) resolve(true);
        });
        stream.on("error", () => {});
        stream.on("close", () => {
          held.delete(stream);
          resolve(false);
        });
      });
    },
    heldStreams: () => held.size,
    async close() {
      const open = session;
      session = undefined;
      for (const stream of held) stream.close(http2.constants.NGHTTP2_CANCEL);
      if (open && !open.closed) await new Promise<void>((resolve) => open.close(() => resolve()));
    },
  };
}
