/**
 * A fault injector in front of the real policy engine: an HTTP server on a
 * loopback port that the worker's `POLICY_ENGINE_URL` points at. It forwards
 * every request to the real engine, except that, by its mode, it answers a
 * share of them 503 itself (as an overloaded gateway would), forwards them
 * with the prompt removed (so the real engine answers its own 400), or holds
 * them until released (a slow engine). It counts requests per session.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { deferred } from "./deferred.js";

/** What the injector does to the requests it receives. */
export type PolicyFault =
  /** Forward everything unchanged. */
  | { kind: "none" }
  /** Answer 503 to the first `attempts(order)` requests of each session (`order`: the session's arrival rank, from 0). */
  | { kind: "unavailable"; attempts: (order: number) => number }
  /** Forward without `prompt`: the real engine refuses the request with 400 and names the field. */
  | { kind: "malformed" }
  /** Hold requests until {@link PolicyFaultProxy.release}, then forward them. */
  | { kind: "hold" };

/** Requests one session sent, and how many of them the injector answered 503. */
export interface SessionRequests {
  requests: number;
  unavailable: number;
}

/** The running injector. */
export interface PolicyFaultProxy {
  /** `http://127.0.0.1:port/v1/evaluate`, for `POLICY_ENGINE_URL`. */
  url: URL;
  /** Changes the mode for requests that arrive from now on; counts start over. */
  inject(fault: PolicyFault): void;
  /** Forwards the requests held by a `hold` fault, and those that arrive later, until the next `inject`. */
  release(): void;
  /** Requests seen since the last `inject`, by session id. */
  requestsBySession(): ReadonlyMap<string, SessionRequests>;
  close(): Promise<void>;
}

/** The engine's own time limit on one evaluation is far below this: it bounds a forward whose engine stopped answering. */
const FORWARD_TIMEOUT_MS = 30_000;

async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function sessionIdOf(body: Buffer): string {
  try {
    const parsed = JSON.parse(body.toString("utf8")) as { session_id?: unknown };
    return typeof parsed.session_id === "string" ? parsed.session_id : "";
  } catch {
    return "";
  }
}

function withoutPrompt(body: Buffer): Buffer {
  const { prompt: _dropped, ...rest } = JSON.parse(body.toString("utf8")) as Record<string, unknown>;
  return Buffer.from(JSON.stringify(rest));
}

/** Starts the injector in front of `engineUrl` (the engine's base URL), forwarding everything until told otherwise. */
export async function startPolicyFaultProxy(engineUrl: URL): Promise<PolicyFaultProxy> {
  let fault: PolicyFault = { kind: "none" };
  let counts = new Map<string, SessionRequests & { order: number }>();
  let released = deferred();

  async function forward(request: IncomingMessage, response: ServerResponse, body: Buffer): Promise<void> {
    const target = new URL(request.url ?? "/", engineUrl);
    const headers: Record<string, string> = {};
    for (const name of ["content-type", "accept"]) {
      const value = request.headers[name];
      if (typeof value === "string") headers[name] = value;
    }
    const answer = await fetch(target, {
      method: request.method ?? "GET",
      headers,
      body: request.method === "GET" || request.method === "HEAD" ? undefined : new Uint8Array(body),
      signal: AbortSignal.timeout(FORWARD_TIMEOUT_MS),
    });
    const answerBody = Buffer.from(await answer.arrayBuffer());
    response.writeHead(answer.status, { "content-type": answer.headers.get("content-type") ?? "application/json" });
    response.end(answerBody);
  }

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const body = await readBody(request);
    const sessionId = sessionIdOf(body);
    let session = counts.get(sessionId);
    if (session === undefined) {
      session = { requests: 0, unavailable: 0, order: counts.size };
      counts.set(sessionId, session);
    }
    session.requests += 1;
    const current = fault;
    if (current.kind === "unavailable" && session.requests <= current.attempts(session.order)) {
      session.unavailable += 1;
      response.writeHead(503, { "content-type": "application/json", "retry-after": "1" });
      response.end(JSON.stringify({ error: "unavailable", message: "fault injector: the policy engine is overloaded" }));
      return;
    }
    if (current.kind === "hold") await released.promise;
    await forward(request, response, current.kind === "malformed" ? withoutPrompt(body) : body);
  }

  const server: Server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      // The engine did not answer (or the worker gave up first): a gateway's 502.
      if (!response.headersSent) response.writeHead(502, { "content-type": "application/json" });
      response.end(JSON.stringify({ error: "bad_gateway", message: `fault injector: ${(error as Error).message}` }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: new URL(`http://127.0.0.1:${port}/v1/evaluate`),
    inject(next) {
      fault = next;
      counts = new Map();
      released = deferred();
    },
    release() {
      released.resolve();
    },
    requestsBySession: () => counts,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
