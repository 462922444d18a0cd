/**
 * The generated bad-input campaign: fast-check arbitraries of malformed
 * requests on every protocol of the port (wrong shapes and types, huge and odd
 * strings, invalid UTF-8, duplicate keys, random bytes as protobuf, truncated
 * and odd frames, bad headers and content types, odd paths and methods), a
 * client that sends them over real HTTP/1.1 and HTTP/2 connections and reads
 * each answer's outcome (the HTTP status, or for gRPC, gRPC-Web and Connect
 * streams the status in the trailers mapped like every error), and the table
 * the campaign prints.
 */
import http from "node:http";
import http2 from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import fc from "fast-check";
import { GetRequestSchema, StartRequestSchema, WatchRequestSchema } from "../../gen/somagent/orchestrator/v1/session_pb.js";

export type Protocol = "rest" | "connect-json" | "connect-binary" | "grpc-web" | "grpc";

/** One generated request. */
export interface BadRequest {
  protocol: Protocol;
  /** What was generated, for the failure report. */
  kind: string;
  http2: boolean;
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer;
}

/** What came back. */
export interface Outcome {
  /** The HTTP status, or the status a gRPC/Connect-stream code maps to (the one table); 0 when there was no answer. */
  status: number;
  /** How the answer ended when there was no status: `reset`, `timeout`, or the client error. */
  failure?: string;
}

const SERVICE = "/somagent.orchestrator.v1.SessionService";
const METHODS = ["Start", "Get", "Watch"] as const;

/** HTTP status of each gRPC code (google.rpc / Connect mapping). */
const CODE_STATUS = [200, 499, 500, 400, 504, 404, 409, 403, 429, 400, 409, 400, 501, 500, 503, 500, 401];
const CODE_NAMES = [
  "ok", "canceled", "unknown", "invalid_argument", "deadline_exceeded", "not_found", "already_exists", "permission_denied",
  "resource_exhausted", "failed_precondition", "aborted", "out_of_range", "unimplemented", "internal", "unavailable", "data_loss", "unauthenticated",
];

// ---------- arbitraries ----------

const utf8 = (s: string) => Buffer.from(s, "utf8");

/** Strings a field should never get: huge, control characters, lone surrogates, four-byte characters, odd unicode. */
const oddString = fc.oneof(
  { weight: 10, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 10, arbitrary: fc.string({ unit: "binary", maxLength: 40 }) },
  { weight: 10, arbitrary: fc.constantFrom("", " ", "\u0000", "\ud800", "\udfff", "😀".repeat(50), "a".repeat(129), "../../etc/passwd", "session-sess-local", "%00", "\u202e") },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 300 * 1024 }).map((n) => "x".repeat(n)) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 40_000 }).map((n) => "𝄞".repeat(n)) },
);

const jsonScalar = fc.oneof(oddString, fc.integer(), fc.double(), fc.boolean(), fc.constant(null));
/** A JSON value of any shape. */
const anyJson = fc.oneof(jsonScalar, fc.array(jsonScalar, { maxLength: 4 }), fc.dictionary(fc.string({ maxLength: 8 }), jsonScalar, { maxKeys: 4 }));

/** A request-shaped object with wrong types, wrong fields or odd values. */
const wrongShape = fc.record(
  {
    tenant: anyJson,
    user: anyJson,
    prompt: anyJson,
    metadata: fc.oneof(anyJson, fc.dictionary(fc.string({ maxLength: 12 }), anyJson, { maxKeys: 3 })),
    workflow_id: anyJson,
    workflowId: anyJson,
    after_sequence: anyJson,
    bogus: anyJson,
  },
  { requiredKeys: [] },
);

/** JSON bodies, as bytes: well-formed but wrongly shaped, with duplicate keys, with invalid UTF-8, truncated, or not JSON at all. */
const jsonBody: fc.Arbitrary<{ kind: string; bytes: Buffer }> = fc.oneof(
  wrongShape.map((v) => ({ kind: "json wrong shape", bytes: utf8(JSON.stringify(v)) })),
  anyJson.map((v) => ({ kind: "json any value", bytes: utf8(JSON.stringify(v)) })),
  fc.tuple(fc.constantFrom("tenant", "user", "prompt", "metadata", "workflow_id"), jsonScalar, jsonScalar).map(([key, a, b]) => ({
    kind: "json duplicate key",
    bytes: utf8(`{"tenant":"t","user":"u","prompt":"p",${JSON.stringify(key)}:${JSON.stringify(a)},${JSON.stringify(key)}:${JSON.stringify(b)}}`),
  })),
  fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 4 }).map((b) => b.map((x) => x | 0x80)), fc.constantFrom("tenant", "user", "prompt", "workflow_id")).map(([bad, key]) => ({
    kind: "json invalid utf-8",
    bytes: Buffer.concat([utf8(`{"tenant":"t","user":"u","prompt":"p","${key}":"a`), Buffer.from(bad), utf8('"}')]),
  })),
  fc.tuple(wrongShape, fc.nat()).map(([v, cut]) => {
    const bytes = utf8(JSON.stringify(v));
    return { kind: "json truncated", bytes: bytes.subarray(0, cut % Math.max(1, bytes.length)) };
  }),
  fc.uint8Array({ maxLength: 512 }).map((b) => ({ kind: "random bytes", bytes: Buffer.from(b) })),
);

const validProtos = [
  toBinary(StartRequestSchema, create(StartRequestSchema, { tenant: "t", user: "u", prompt: "p", metadata: { session_id: "campaign" } })),
  toBinary(GetRequestSchema, create(GetRequestSchema, { workflowId: "session-campaign" })),
  toBinary(WatchRequestSchema, create(WatchRequestSchema, { workflowId: "session-campaign" })),
];

/** Protobuf message bytes: random, a valid message with bytes flipped or cut, or a field with a wrong wire type or a huge length. */
const protoBody: fc.Arbitrary<{ kind: string; bytes: Buffer }> = fc.oneof(
  fc.uint8Array({ maxLength: 512 }).map((b) => ({ kind: "proto random bytes", bytes: Buffer.from(b) })),
  fc.tuple(fc.constantFrom(...validProtos), fc.nat(), fc.integer({ min: 0, max: 255 })).map(([valid, at, byte]) => {
    const bytes = Buffer.from(valid);
    bytes[at % bytes.length] = byte;
    return { kind: "proto byte flipped", bytes };
  }),
  fc.tuple(fc.constantFrom(...validProtos), fc.nat()).map(([valid, cut]) => ({ kind: "proto truncated", bytes: Buffer.from(valid.subarray(0, cut % valid.length)) })),
  fc.tuple(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 0, max: 7 }), fc.uint8Array({ maxLength: 16 })).map(([field, wire, rest]) => ({
    kind: "proto odd tag",
    bytes: Buffer.concat([Buffer.from([(field << 3) | wire]), Buffer.from(rest)]),
  })),
  fc.constantFrom(
    { kind: "proto invalid utf-8 string", bytes: Buffer.from([0x0a, 0x02, 0xc3, 0x28]) },
    { kind: "proto huge length", bytes: Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]) },
    { kind: "proto deep group", bytes: Buffer.from(Array.from({ length: 200 }, () => 0x0b)) },
  ),
);

/** Length-prefixed frames around a body: one, none, two, a truncated one, a lying length, odd flags. */
const frames = (body: fc.Arbitrary<{ kind: string; bytes: Buffer }>): fc.Arbitrary<{ kind: string; bytes: Buffer }> =>
  fc.tuple(body, fc.constantFrom("one", "none", "two", "truncated", "short length", "long length", "odd flags", "compressed flag"), fc.integer({ min: 2, max: 255 })).map(
    ([{ kind, bytes }, framing, flags]) => {
      const frame = (payload: Buffer, flag = 0, length = payload.length) => {
        const head = Buffer.alloc(5);
        head[0] = flag;
        head.writeUInt32BE(length >>> 0, 1);
        return Buffer.concat([head, payload]);
      };
      const framed: Record<string, () => Buffer> = {
        one: () => frame(bytes),
        none: () => Buffer.alloc(0),
        two: () => Buffer.concat([frame(bytes), frame(bytes)]),
        truncated: () => frame(bytes).subarray(0, Math.max(1, frame(bytes).length - 3)),
        "short length": () => frame(bytes, 0, Math.max(0, bytes.length - 1)),
        "long length": () => frame(bytes, 0, bytes.length + 1000),
        "odd flags": () => frame(bytes, flags),
        "compressed flag": () => frame(bytes, 1),
      };
      return { kind: `${kind}, frame ${framing}`, bytes: (framed[framing] as () => Buffer)() };
    },
  );

const rpcPath = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...METHODS).map((m) => `${SERVICE}/${m}`) },
  { weight: 1, arbitrary: fc.constantFrom(`${SERVICE}/Nope`, "/somagent.orchestrator.v1.Nope/Start", `${SERVICE}/Start/extra`, `${SERVICE}/`, "/grpc.health.v1.Health/Check") },
);

/** Header sets that are wrong for the protocol: timeouts, versions, encodings. No encoding the server lacks: that is UNIMPLEMENTED by the specs. */
const oddHeaders = fc.record(
  {
    "connect-protocol-version": fc.constantFrom("1", "2", "", "x"),
    "connect-timeout-ms": fc.constantFrom("abc", "-1", "99999999999", "30000"),
    "grpc-timeout": fc.constantFrom("abc", "1X", "99999999999S", "30S", "-5m"),
    "grpc-encoding": fc.constantFrom("identity", "gzip"),
    "content-encoding": fc.constantFrom("identity", "gzip"),
    "x-grpc-web": fc.constantFrom("1", "0"),
    "x-odd": fc.string({ unit: fc.constantFrom(..."abc =;,\"'"), maxLength: 40 }),
  },
  { requiredKeys: [] },
);

const restTarget = fc.oneof(
  fc.constantFrom("/v1/sessions/start", "/v1/sessions/start/", "/v1/sessions", "/v1/sessions/", "/v1/sessions/start:watch", "/v1/sessions/%2F:watch", "/v1/sessions/a%zz", "/v1/sessions/%00", "/v1/sessions/..%2F..%2Fetc"),
  fc.string({ unit: fc.constantFrom(..."abcXYZ09-_.~:%"), maxLength: 80 }).map((id) => `/v1/sessions/${id}`),
  fc.string({ unit: fc.constantFrom(..."abc09-_"), maxLength: 30 }).map((id) => `/v1/sessions/${id}:watch`),
  fc.integer({ min: 1, max: 9000 }).map((n) => `/v1/sessions/${"a".repeat(n)}`),
  fc.string({ unit: fc.constantFrom(..."abc/:%._-~"), maxLength: 60 }).map((p) => `/${p}`),
);
const restQuery = fc.oneof(
  fc.constant(""),
  fc.constantFrom("?workflow_id=x", "?after_sequence=abc", "?after_sequence=-1", "?tenant=t", "?a=1&a=2", "?%zz=1", "?=", "?workflowId=session-x"),
  fc.string({ unit: fc.constantFrom(..."abc=&%._"), maxLength: 40 }).map((q) => `?${q}`),
);

const contentType = (good: string) => fc.oneof({ weight: 6, arbitrary: fc.constant(good) }, { weight: 1, arbitrary: fc.constantFrom("", "text/plain", "application/json; charset=utf-16", "application/x-www-form-urlencoded", "application/grpc-web-text", "application/proto; x", "multipart/form-data; boundary=x") });

const restCase: fc.Arbitrary<BadRequest> = fc
  .tuple(
    fc.oneof({ weight: 4, arbitrary: fc.constant("POST") }, { weight: 3, arbitrary: fc.constant("GET") }, { weight: 2, arbitrary: fc.constantFrom("PUT", "DELETE", "PATCH", "HEAD", "OPTIONS") }),
    fc.oneof({ weight: 1, arbitrary: fc.constant("/v1/sessions/start") }, { weight: 2, arbitrary: restTarget }),
    restQuery,
    jsonBody,
    contentType("application/json"),
    fc.boolean(),
    fc.boolean(),
  )
  .map(([method, path, query, body, type, withBody, useHttp2]) => ({
    protocol: "rest",
    kind: `${method} ${withBody ? body.kind : "no body"}`,
    http2: useHttp2,
    method,
    path: `${path}${query}`,
    headers: type ? { "content-type": type } : ({} as Record<string, string>),
    body: (withBody || method === "POST") && method !== "GET" && method !== "HEAD" ? body.bytes : Buffer.alloc(0),
  }));

const connectJsonCase: fc.Arbitrary<BadRequest> = fc
  .tuple(rpcPath, jsonBody, oddHeaders, contentType("application/json"), fc.boolean(), fc.constantFrom("POST", "POST", "POST", "GET", "PUT"))
  .map(([path, body, headers, type, useHttp2, method]) => {
    const watch = path.endsWith("/Watch");
    if (method === "GET") {
      const message = encodeURIComponent(body.bytes.toString("latin1"));
      return { protocol: "connect-json", kind: `GET ${body.kind}`, http2: useHttp2, method, path: `${path}?encoding=json&connect=v1&message=${message}`.slice(0, 7000), headers: {}, body: Buffer.alloc(0) };
    }
    return {
      protocol: "connect-json",
      kind: body.kind,
      http2: useHttp2,
      method,
      path,
      headers: { "connect-protocol-version": "1", ...headers, "content-type": watch && type === "application/json" ? "application/connect+json" : type },
      body: watch ? frameOnce(body.bytes) : body.bytes,
    };
  });

const connectBinaryCase: fc.Arbitrary<BadRequest> = fc
  .tuple(rpcPath, fc.oneof(protoBody, frames(protoBody)), oddHeaders, contentType("application/proto"), fc.boolean(), fc.boolean())
  .map(([path, body, headers, type, useHttp2, asGet]) => {
    const watch = path.endsWith("/Watch");
    if (asGet && !watch) {
      return { protocol: "connect-binary", kind: `GET ${body.kind}`, http2: useHttp2, method: "GET", path: `${path}?encoding=proto&base64=1&connect=v1&message=${body.bytes.toString("base64url")}`, headers: {}, body: Buffer.alloc(0) };
    }
    return {
      protocol: "connect-binary",
      kind: body.kind,
      http2: useHttp2,
      method: "POST",
      path,
      headers: { "connect-protocol-version": "1", ...headers, "content-type": watch && type === "application/proto" ? "application/connect+proto" : type },
      body: body.bytes,
    };
  });

const grpcWebCase: fc.Arbitrary<BadRequest> = fc
  .tuple(rpcPath, fc.oneof(frames(protoBody), frames(jsonBody), protoBody), oddHeaders, contentType("application/grpc-web+proto"), fc.boolean(), fc.boolean())
  .map(([path, body, headers, type, json, useHttp2]) => ({
    protocol: "grpc-web",
    kind: body.kind,
    http2: useHttp2,
    method: "POST",
    path,
    headers: { ...headers, "content-type": json && type === "application/grpc-web+proto" ? "application/grpc-web+json" : type },
    body: body.bytes,
  }));

const grpcCase: fc.Arbitrary<BadRequest> = fc
  .tuple(rpcPath, fc.oneof(frames(protoBody), frames(jsonBody), protoBody), oddHeaders, contentType("application/grpc"), fc.boolean())
  .map(([path, body, headers, type, json]) => ({
    protocol: "grpc",
    kind: body.kind,
    http2: true,
    method: "POST",
    path,
    headers: { te: "trailers", ...headers, "content-type": json && type === "application/grpc" ? "application/grpc+json" : type },
    body: body.bytes,
  }));

/** Every kind of bad request, each protocol equally likely. */
export const badRequest: fc.Arbitrary<BadRequest> = fc.oneof(restCase, connectJsonCase, connectBinaryCase, grpcWebCase, grpcCase);

function frameOnce(bytes: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(bytes.length, 1);
  return Buffer.concat([head, bytes]);
}

// ---------- the client ----------

/** Sends requests over real connections: a keep-alive HTTP/1.1 agent and one HTTP/2 session, reopened when it closes. */
export function createCampaignClient(baseUrl: string, timeoutMs = 10_000) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  let session: http2.ClientHttp2Session | undefined;
  const h2 = () => {
    if (!session || session.closed || session.destroyed) {
      session = http2.connect(baseUrl);
      session.on("error", () => {});
    }
    return session;
  };

  function send(request: BadRequest): Promise<Outcome> {
    return request.http2 ? sendHttp2(request) : sendHttp1(request);
  }

  function sendHttp1(request: BadRequest): Promise<Outcome> {
    return new Promise((resolve) => {
      const url = new URL(baseUrl);
      const req = http.request(
        { agent, host: url.hostname, port: url.port, method: request.method, path: request.path, headers: request.body.length > 0 ? { ...request.headers, "content-length": String(request.body.length) } : request.headers },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => resolve({ status: outcomeStatus(request, res.statusCode ?? 0, res.headers, {}, Buffer.concat(chunks)) }));
          res.on("error", (e) => resolve({ status: 0, failure: e.message }));
        },
      );
      req.setTimeout(timeoutMs, () => {
        req.destroy();
        resolve({ status: 0, failure: "timeout" });
      });
      req.on("error", (e) => resolve({ status: 0, failure: (e as NodeJS.ErrnoException).code ?? e.message }));
      if (request.body.length > 0) req.end(request.body);
      else req.end();
    });
  }

  function sendHttp2(request: BadRequest): Promise<Outcome> {
    return new Promise((resolve) => {
      let stream: http2.ClientHttp2Stream;
      try {
        // Node ends GET, HEAD and DELETE streams at once unless told there is a body.
        stream = h2().request({ ":method": request.method, ":path": request.path, ...request.headers }, { endStream: request.body.length === 0 });
      } catch (e) {
        resolve({ status: 0, failure: (e as Error).message });
        return;
      }
      let status = 0;
      let headers: http2.IncomingHttpHeaders = {};
      let trailers: http2.IncomingHttpHeaders = {};
      const chunks: Buffer[] = [];
      stream.setTimeout(timeoutMs, () => {
        stream.close(http2.constants.NGHTTP2_CANCEL);
        resolve({ status: 0, failure: "timeout" });
      });
      stream.on("response", (h) => {
        headers = h;
        status = Number(h[":status"]);
      });
      stream.on("trailers", (t) => (trailers = t));
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("error", (e) => resolve({ status: 0, failure: (e as NodeJS.ErrnoException).code ?? e.message }));
      const answered = () => resolve({ status: outcomeStatus(request, status, headers, trailers, Buffer.concat(chunks)) });
      // The answer is complete when the server ends its side, as any client reads it; the stream may stay open while
      // the client still uploads a body the server refused unread (the client then cancels, as gRPC clients do).
      stream.on("end", () => {
        answered();
        if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
      });
      stream.on("close", () => {
        if (status === 0) resolve({ status: 0, failure: `reset (${stream.rstCode})` });
        else answered();
      });
      if (request.body.length > 0) stream.end(request.body);
    });
  }

  return {
    send,
    close() {
      agent.destroy();
      session?.close();
    },
  };
}

/** The status an answer stands for: an RPC error carried with HTTP 200 counts as the status its code maps to. */
function outcomeStatus(request: BadRequest, status: number, headers: http.IncomingHttpHeaders, trailers: http.IncomingHttpHeaders, body: Buffer): number {
  if (status !== 200 || request.protocol === "rest") return status;
  const type = String(headers["content-type"] ?? "");
  const grpcStatus = trailers["grpc-status"] ?? headers["grpc-status"] ?? (type.startsWith("application/grpc-web") ? /grpc-status: ?(\d+)/i.exec(body.toString("latin1"))?.[1] : undefined);
  if (grpcStatus !== undefined) return CODE_STATUS[Number(grpcStatus)] ?? 500;
  if (type.startsWith("application/connect+")) {
    const code = /"code":"([a-z_]+)"/.exec(body.toString("latin1"))?.[1];
    return code === undefined ? 200 : (CODE_STATUS[CODE_NAMES.indexOf(code)] ?? 500);
  }
  return status;
}

// ---------- the table ----------

/** Counts of one campaign. */
export interface CampaignResult {
  perProtocol: Map<Protocol, { requests: number; statuses: Map<string, number> }>;
  serverErrors: { request: BadRequest; outcome: Outcome }[];
  noAnswer: { request: BadRequest; outcome: Outcome }[];
}

export function tally(results: { request: BadRequest; outcome: Outcome }[]): CampaignResult {
  const perProtocol = new Map<Protocol, { requests: number; statuses: Map<string, number> }>();
  for (const { request, outcome } of results) {
    const row = perProtocol.get(request.protocol) ?? { requests: 0, statuses: new Map() };
    row.requests += 1;
    const key = outcome.status === 0 ? (outcome.failure === "timeout" ? "timeout" : "no answer") : String(outcome.status);
    row.statuses.set(key, (row.statuses.get(key) ?? 0) + 1);
    perProtocol.set(request.protocol, row);
  }
  return {
    perProtocol,
    serverErrors: results.filter((r) => r.outcome.status >= 500),
    noAnswer: results.filter((r) => r.outcome.status === 0),
  };
}

/** The campaign's table, in Markdown. */
export function formatTable(result: CampaignResult, extra: { crashes: number; heap: string; rss: string; seed: number; seconds: number }): string {
  const protocols: Protocol[] = ["rest", "connect-json", "connect-binary", "grpc-web", "grpc"];
  const columns = [...new Set([...result.perProtocol.values()].flatMap((r) => [...r.statuses.keys()]))].sort();
  const lines = [
    `| protocol | requests | ${columns.join(" | ")} | 5xx |`,
    `|---|---:|${columns.map(() => "---:").join("|")}|---:|`,
  ];
  let total = 0;
  for (const protocol of protocols) {
    const row = result.perProtocol.get(protocol) ?? { requests: 0, statuses: new Map<string, number>() };
    total += row.requests;
    const fives = [...row.statuses].filter(([k]) => Number(k) >= 500).reduce((n, [, v]) => n + v, 0);
    lines.push(`| ${protocol} | ${row.requests} | ${columns.map((c) => row.statuses.get(c) ?? 0).join(" | ")} | ${fives} |`);
  }
  const totals = columns.map((c) => [...result.perProtocol.values()].reduce((n, r) => n + (r.statuses.get(c) ?? 0), 0));
  lines.push(`| **all** | ${total} | ${totals.join(" | ")} | ${result.serverErrors.length} |`);
  lines.push("");
  lines.push(`5xx: ${result.serverErrors.length} · no answer: ${result.noAnswer.length} · crashes: ${extra.crashes} · heap ${extra.heap} · rss ${extra.rss} · seed ${extra.seed} · ${extra.seconds.toFixed(1)} s`);
  return lines.join("\n");
}
