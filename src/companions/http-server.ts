/**
 * The small JSON-over-HTTP server both companions are built on: routing with
 * `:param` segments, JSON bodies of at most 64 KiB, `{error, message}` answers,
 * `GET /health`, `GET /metrics` and a request counter on the service's own
 * prom-client registry.
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Counter, type Registry } from "prom-client";
import type { Logger } from "../shared/logger.js";
import { FieldError } from "./request-fields.js";

/** Limit of a request body: far above any valid request, far below a memory problem. */
const BODY_LIMIT_BYTES = 64 * 1024;

/** An answer other than 2xx: `{error: code, message}` with `status`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "HttpError";
  }
}

/** What a handler receives: the path's `:param` values and, for POST and PUT, the parsed JSON body. */
export interface RouteRequest {
  params: Record<string, string>;
  body: unknown;
}

/** What a handler answers: a JSON body (status 200 unless given) or plain text. */
export type RouteReply =
  | { status?: number; json: unknown; headers?: Record<string, string> }
  | { status?: number; text: string; contentType: string };

/** One endpoint. `path` is literal segments and `:name` segments, e.g. `/v1/policies/:tenant`. */
export interface Route {
  method: "GET" | "POST" | "PUT";
  path: string;
  handle(request: RouteRequest): RouteReply | Promise<RouteReply>;
}

/** What {@link createCompanionServer} needs. */
export interface CompanionServerOptions {
  /** The service's routes; `/health` and `/metrics` are added. */
  routes: Route[];
  /** The service's own registry, so its metrics never collide with another registry in the process. */
  registry: Registry;
  /** Prefix of the request counter's name, e.g. `somagent_policy_engine`. */
  metricPrefix: string;
  logger: Logger;
}

/** A companion's HTTP server; only entry points listen on a configured port, tests on port 0. */
export interface CompanionServer {
  /** Starts listening; resolves with the base URL, e.g. `http://127.0.0.1:8101/`. */
  listen(port: number, host: string): Promise<URL>;
  /** Stops accepting connections and resolves when in-flight requests have been answered. */
  close(): Promise<void>;
  /** The registry `/metrics` exposes. */
  registry: Registry;
}

interface CompiledRoute extends Route {
  segments: string[];
}

type Match =
  | { kind: "route"; route: CompiledRoute; params: Record<string, string> }
  | { kind: "method"; label: string; allowed: string[] }
  | { kind: "none" };

/** Builds the server; throws when two routes share a method and path. */
export function createCompanionServer(options: CompanionServerOptions): CompanionServer {
  const { registry, logger } = options;
  const requests = new Counter({
    name: `${options.metricPrefix}_http_requests_total`,
    help: "HTTP requests answered, by route pattern, method and status.",
    labelNames: ["route", "method", "status"] as const,
    registers: [registry],
  });
  const builtIn: Route[] = [
    { method: "GET", path: "/health", handle: () => ({ json: { status: "ok" } }) },
    {
      method: "GET",
      path: "/metrics",
      handle: async () => ({ text: await registry.metrics(), contentType: registry.contentType }),
    },
  ];
  const routes = compile([...builtIn, ...options.routes]);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let label = "unmatched";
    try {
      const { pathname } = new URL(req.url ?? "/", "http://companion");
      const match = find(routes, req.method ?? "GET", pathname);
      if (match.kind === "none") throw new HttpError(404, "not_found", `no route for ${pathname}`);
      if (match.kind === "method") {
        label = match.label;
        throw new HttpError(405, "method_not_allowed", `${req.method} is not allowed here (allowed: ${match.allowed.join(", ")})`, {
          allow: match.allowed.join(", "),
        });
      }
      label = match.route.path;
      const body = match.route.method === "GET" ? undefined : await readJson(req, BODY_LIMIT_BYTES);
      write(res, await match.route.handle({ params: match.params, body }));
    } catch (error) {
      writeFailure(res, error, label, logger);
    } finally {
      requests.inc({ route: label, method: req.method ?? "", status: String(res.statusCode) });
    }
  }

  // A slow sender cannot hold a request open for long.
  const server = createServer({ requestTimeout: 30_000 }, (req, res) => void handle(req, res));
  return {
    registry,
    listen(port, host) {
      return new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          server.off("error", reject);
          const address = server.address() as AddressInfo;
          const hostText = address.family === "IPv6" ? `[${address.address}]` : address.address;
          resolve(new URL(`http://${hostText}:${address.port}/`));
        });
      });
    },
    close() {
      return new Promise((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        // Keep-alive connections would otherwise hold close() open until their idle timeout.
        server.closeIdleConnections();
      });
    },
  };
}

function compile(routes: Route[]): CompiledRoute[] {
  const seen = new Set<string>();
  return routes.map((route) => {
    const key = `${route.method} ${route.path}`;
    if (seen.has(key)) throw new Error(`duplicate route ${key}`);
    seen.add(key);
    return { ...route, segments: route.path.split("/") };
  });
}

function find(routes: CompiledRoute[], method: string, pathname: string): Match {
  const segments = pathname.split("/");
  const matching: { route: CompiledRoute; params: Record<string, string> }[] = [];
  for (const route of routes) {
    const params = matchSegments(route.segments, segments);
    if (params) matching.push({ route, params });
  }
  const exact = matching.find((m) => m.route.method === method);
  if (exact) return { kind: "route", ...exact };
  const first = matching[0];
  if (!first) return { kind: "none" };
  return { kind: "method", label: first.route.path, allowed: matching.map((m) => m.route.method) };
}

function matchSegments(pattern: string[], actual: string[]): Record<string, string> | undefined {
  if (pattern.length !== actual.length) return undefined;
  const params: Record<string, string> = {};
  for (const [index, segment] of pattern.entries()) {
    const value = actual[index] ?? "";
    if (segment.startsWith(":")) {
      if (value === "") return undefined;
      try {
        params[segment.slice(1)] = decodeURIComponent(value);
      } catch {
        throw new HttpError(400, "invalid_request", `${segment.slice(1)} is not a valid URL-encoded path segment`);
      }
    } else if (segment !== value) {
      return undefined;
    }
  }
  return params;
}

/** Reads and parses a JSON body: 415 for another content type, 413 past `limit` bytes, 400 for invalid JSON. */
async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const contentType = req.headers["content-type"] ?? "";
  if (!/^application\/json\s*(;|$)/i.test(contentType)) {
    req.resume();
    throw new HttpError(415, "unsupported_media_type", `content-type must be application/json, not ${JSON.stringify(contentType)}`);
  }
  const text = await readBody(req, limit);
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, "invalid_request", "body is not valid JSON");
  }
}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const tooLarge = () => new HttpError(413, "payload_too_large", `body must be at most ${limit} bytes`);
  return new Promise((resolve, reject) => {
    // Unread data is discarded, so the connection stays usable for the answer.
    if (Number(req.headers["content-length"]) > limit) {
      req.resume();
      reject(tooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        req.resume();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks).toString("utf8"));
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
  });
}

function write(res: ServerResponse, reply: RouteReply): void {
  if ("text" in reply) {
    res.writeHead(reply.status ?? 200, { "content-type": reply.contentType, "content-length": Buffer.byteLength(reply.text) });
    res.end(reply.text);
    return;
  }
  writeJson(res, reply.status ?? 200, reply.json, reply.headers);
}

function writeJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

/** Answers a failure: its own status for HttpError, 400 for FieldError, else 500 with an id that is also logged. */
function writeFailure(res: ServerResponse, error: unknown, route: string, logger: Logger): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  if (error instanceof HttpError) {
    writeJson(res, error.status, { error: error.code, message: error.message }, error.headers);
  } else if (error instanceof FieldError) {
    writeJson(res, 400, { error: "invalid_request", message: error.message });
  } else {
    const errorId = randomUUID();
    logger.error("request failed", { errorId, route, error: error instanceof Error ? error.message : String(error) });
    writeJson(res, 500, { error: "internal", message: `internal error; logged as ${errorId}` });
  }
}

/**
 * What an entry point does with its server: listens on the configured address,
 * logs it with `fields`, and on SIGTERM/SIGINT closes (in-flight requests get
 * `graceMs`) and exits.
 */
export async function serveUntilSignalled(
  server: CompanionServer,
  address: { host: string; port: number },
  logger: Logger,
  fields: Record<string, unknown> = {},
  graceMs = 10_000,
): Promise<void> {
  const url = await server.listen(address.port, address.host);
  logger.info("listening", { url: url.href, ...fields });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info("shutting down", { signal });
    setTimeout(() => process.exit(1), graceMs).unref();
    void server.close().then(() => process.exit(0));
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}
