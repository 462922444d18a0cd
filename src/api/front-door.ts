/**
 * The API's one port at the connection level: it peeks at each connection's
 * first bytes to hand HTTP/2 prior knowledge to the HTTP/2 server and anything
 * else to HTTP/1.1, and applies the limits no request handler can: header,
 * request, keep-alive and idle timeouts, the connection cap and HTTP/2's
 * stream cap. Each limit, when reached, answers with its own error.
 */
import http from "node:http";
import http2 from "node:http2";
import net, { type AddressInfo } from "node:net";
import { Code, ConnectError } from "@connectrpc/connect";
import type { EdgeLimits } from "../config.js";
import type { Logger } from "../shared/logger.js";
import { statusJson } from "./errors.js";
import { writeError, type HttpRequest, type HttpResponse } from "./http-responses.js";

/** The connection layer of the API's port. */
export interface FrontDoor {
  /** Listens on `port` (0 for a free one); resolves with the bound address. */
  listen(port: number, host: string): Promise<AddressInfo>;
  /** Stops accepting and asks each HTTP/2 connection to finish its streams (GOAWAY); resolves once the port is closed. */
  close(): Promise<void>;
  /** Ends every HTTP/1.1 connection after its last bytes are written. */
  endHttp1(): void;
  /** Cuts every connection still open; returns how many there were. */
  destroyAll(): number;
}

/** The limits the front door enforces (see {@link EdgeLimits}). */
export type FrontDoorLimits = Pick<
  EdgeLimits,
  "headersTimeoutMs" | "requestTimeoutMs" | "keepAliveTimeoutMs" | "idleTimeoutMs" | "maxConnections" | "maxHttp2Streams"
>;

/** The first bytes of every HTTP/2 connection with prior knowledge (RFC 9113 §3.4). */
const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/** Past this multiple of the connection cap, connections are dropped unanswered: a flood gets no work done for it. */
const HARD_CAP_FACTOR = 2;

/** Builds the front door; `handle` serves every request of either protocol. */
export function createFrontDoor(handle: (req: HttpRequest, res: HttpResponse) => void, limits: FrontDoorLimits, logger: Logger): FrontDoor {
  const sockets = new Set<net.Socket>();
  const h1Sockets = new Set<net.Socket>();
  const h2Sessions = new Set<http2.ServerHttp2Session>();
  /** Connections accepted past the cap: each request on them is refused and the connection closed. */
  const overCap = new WeakSet<object>();

  const serve = (req: HttpRequest, res: HttpResponse): void => {
    const session = "stream" in req ? req.stream.session : undefined;
    if (overCap.has(session ?? (req.socket as net.Socket))) {
      if (session) res.once("close", () => session.close());
      else res.setHeader("connection", "close");
      writeError(res, connectionCapError(limits.maxConnections));
      return;
    }
    // Node times out HTTP/1.1 request bodies itself (requestTimeout); an HTTP/2 stream's body is ours to bound.
    if ("stream" in req && !req.complete) boundRequestBody(req, res, limits.requestTimeoutMs);
    handle(req, res);
  };

  const h1 = http.createServer(
    {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      connectionsCheckingInterval: Math.min(1_000, limits.headersTimeoutMs),
    },
    serve,
  );
  // Node arms its header and request timeouts when the server starts listening. This one never listens
  // (connections are handed to it), so tell it it does; test/api/edge.test.ts fails if a Node upgrade changes that.
  h1.emit("listening");
  h1.on("clientError", answerClientError);

  const h2 = http2.createServer({ settings: { maxConcurrentStreams: limits.maxHttp2Streams } }, serve);
  let acceptingOverCap = false;
  h2.on("session", (session) => {
    h2Sessions.add(session);
    session.once("close", () => h2Sessions.delete(session));
    // The session is created while its socket is handed over, so the flag is still that socket's.
    if (acceptingOverCap) overCap.add(session);
    closeWhenIdle(session, limits.idleTimeoutMs);
  });
  for (const server of [h1, h2]) server.on("error", (error) => logger.error("http server error", { error: String(error) }));

  const front = net.createServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    const pastCap = sockets.size > limits.maxConnections;
    // Nothing, or half a preface, within the header timeout: there is no request to answer.
    socket.setTimeout(limits.headersTimeoutMs, () => socket.destroy());
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const n = Math.min(head.length, H2_PREFACE.length);
      const maybeH2 = head.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
      if (maybeH2 && head.length < H2_PREFACE.length) return;
      socket.off("data", onData);
      socket.setTimeout(0);
      socket.pause();
      socket.unshift(head);
      if (maybeH2) {
        acceptingOverCap = pastCap;
        // The HTTP/2 session reads the buffered bytes itself on the next tick; resuming would drop them.
        h2.emit("connection", socket);
        acceptingOverCap = false;
      } else {
        if (pastCap) overCap.add(socket);
        h1Sockets.add(socket);
        socket.once("close", () => h1Sockets.delete(socket));
        h1.emit("connection", socket);
        socket.resume();
      }
    };
    socket.on("data", onData);
  });
  front.maxConnections = limits.maxConnections * HARD_CAP_FACTOR;

  return {
    listen(port, host) {
      return new Promise((resolve, reject) => {
        front.once("error", reject);
        front.listen(port, host, () => {
          front.off("error", reject);
          resolve(front.address() as AddressInfo);
        });
      });
    },
    close() {
      const closed = new Promise<void>((resolve) => front.close(() => resolve()));
      // GOAWAY: each HTTP/2 session closes itself, flushed, once its streams are done.
      for (const session of h2Sessions) session.close();
      return closed;
    },
    endHttp1() {
      for (const socket of h1Sockets) socket.end();
    },
    destroyAll() {
      const count = sockets.size;
      for (const socket of sockets) socket.destroy();
      return count;
    },
  };
}

function connectionCapError(maxConnections: number): ConnectError {
  return new ConnectError(`the server holds its maximum of ${maxConnections} connections (API_MAX_CONNECTIONS); retry later`, Code.ResourceExhausted);
}

/**
 * An HTTP/2 request whose body has not arrived within the request timeout is
 * answered DEADLINE_EXCEEDED (408), and the stream is then reset with
 * NO_ERROR, which asks the client to stop sending (RFC 9113 §8.1).
 */
function boundRequestBody(req: http2.Http2ServerRequest, res: HttpResponse, timeoutMs: number): void {
  const timer = setTimeout(() => {
    if (req.complete) return;
    res.once("close", () => req.stream.close(http2.constants.NGHTTP2_NO_ERROR));
    writeError(res, new ConnectError(`the request body did not arrive within ${timeoutMs} ms (API_REQUEST_TIMEOUT_MS)`, Code.DeadlineExceeded), 408);
    if (res.headersSent) req.stream.close(http2.constants.NGHTTP2_NO_ERROR);
  }, timeoutMs);
  timer.unref();
  req.once("end", () => clearTimeout(timer));
  res.once("close", () => clearTimeout(timer));
}

/** Closes (GOAWAY) an HTTP/2 connection that has had no open stream and no traffic for `idleMs`. */
function closeWhenIdle(session: http2.ServerHttp2Session, idleMs: number): void {
  let openStreams = 0;
  session.on("stream", (stream) => {
    openStreams += 1;
    stream.once("close", () => (openStreams -= 1));
  });
  session.setTimeout(idleMs, () => {
    if (openStreams === 0) session.close();
  });
}

/** HTTP/1.1 statuses for the parser's refusals that are not a plain 400. */
const CLIENT_ERROR_STATUS: Record<string, [number, string, Code]> = {
  HPE_HEADER_OVERFLOW: [431, "Request Header Fields Too Large", Code.ResourceExhausted],
  ERR_HTTP_REQUEST_TIMEOUT: [408, "Request Timeout", Code.DeadlineExceeded],
};

/**
 * A request Node's HTTP/1.1 parser refused (malformed request line or header,
 * oversized header block, header or request timeout) gets the same
 * google.rpc.Status JSON as every other error, then the connection is closed.
 */
function answerClientError(error: Error & { code?: string }, socket: net.Socket): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const [status, reason, code] = CLIENT_ERROR_STATUS[error.code ?? ""] ?? [400, "Bad Request", Code.InvalidArgument];
  const message =
    code === Code.DeadlineExceeded
      ? "the request did not arrive within the header or request timeout (API_HEADERS_TIMEOUT_MS, API_REQUEST_TIMEOUT_MS)"
      : `malformed HTTP/1.1 request (${error.code ?? "parse error"})`;
  const body = JSON.stringify(statusJson(new ConnectError(message, code)));
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nconnection: close\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
