/**
 * A standalone JSON-over-HTTP service on fastify: the companions (policy
 * engine, identity service) and the worker's side server are built on it.
 * Fastify does the routing (`:param` segments), the body limit and JSON
 * parsing; this module adds the project's conventions on top: `{error,
 * message}` answers for every failure, 405 with `Allow` for a known path with
 * another method, 415 for a body not declared as JSON, `GET /health`,
 * `GET /metrics` on the injected registry, a request counter, a per-route
 * guard (caller authentication) run before the body is read, when given the
 * names it answers to, a `Host` check against DNS rebinding, and, when given
 * a tracer, a server span per request (server-span.ts).
 */
import { randomUUID } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { isIP } from "node:net";
import type { Tracer } from "@opentelemetry/api";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type HTTPMethods } from "fastify";
import { Counter, type Registry } from "prom-client";
import type { Logger } from "../logger.js";
import { FieldError, HttpError } from "./errors.js";
import { COMPANION_MAX_BODY_BYTES } from "../../config.js";
import { JSON_CONTENT_TYPE, isJsonContentType, type Reply } from "./reply.js";
import { traceRequests } from "./server-span.js";
import { sessionLogFields } from "./session-headers.js";
import { healthRoute, metricsRoute } from "./side-routes.js";

export type { Reply } from "./reply.js";

/** Default limit of a request body: above any body the worker sends for a request the API accepts (config.ts says why). */
const DEFAULT_BODY_LIMIT_BYTES = COMPANION_MAX_BODY_BYTES;

/** Methods answered 405 on a known path that does not serve them (fastify's other methods stay 404). */
const METHODS: readonly HTTPMethods[] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/** What a handler receives: the path's `:param` values, the headers and, for POST and PUT, the parsed JSON body. */
export interface RouteRequest {
  params: Record<string, string>;
  headers: IncomingHttpHeaders;
  body: unknown;
}

/** What a route's guard sees: the request's headers, before its body is read. */
export interface GuardRequest {
  headers: IncomingHttpHeaders;
}

/** One endpoint. `path` is literal segments and `:name` segments, e.g. `/v1/policies/:tenant`. */
export interface Route {
  method: "GET" | "POST" | "PUT";
  path: string;
  /**
   * Decides whether the caller may use the route, before the body is read or
   * its content type checked; throws an {@link HttpError} (401, 403) to refuse.
   */
  guard?(request: GuardRequest): void | Promise<void>;
  handle(request: RouteRequest): Reply | Promise<Reply>;
}

/** What {@link createJsonService} needs. */
export interface JsonServiceOptions {
  /** The service's routes; `GET /health` and `GET /metrics` are added. */
  routes: readonly Route[];
  /** The registry `/metrics` exposes and the request counter registers on; the entry point creates it. */
  registry: Registry;
  /** Prefix of the request counter's name, e.g. `somagent_policy_engine`; without it, requests are not counted. */
  metricPrefix?: string;
  /** What `/health` reports (default: always healthy). */
  healthy?: () => boolean;
  /** Largest accepted request body (default {@link COMPANION_MAX_BODY_BYTES}, 1.56 MiB). */
  bodyLimitBytes?: number;
  /**
   * Host names the service answers to (DNS-rebinding defence): a request
   * whose `Host` names another is refused with 421 `misdirected_request`
   * before anything else, whatever its path. IP literals are always accepted
   * (a rebinding page's requests carry its own domain name, never an IP).
   * Unset: every `Host` is accepted (the worker's side server, scraped by address).
   */
  allowedHosts?: readonly string[];
  logger: Logger;
  /** Traces each request in a server span continuing the caller's `traceparent`; unset, nothing is traced. */
  tracer?: Tracer | undefined;
}

/** A JSON service; only entry points listen on a configured port, tests on port 0. */
export interface JsonService {
  /** Starts listening; resolves with the base URL, e.g. `http://127.0.0.1:8101/`. Throws when the port is taken. */
  listen(port: number, host: string): Promise<URL>;
  /** Stops accepting connections and resolves when in-flight requests have been answered. */
  close(): Promise<void>;
  /** The registry `/metrics` exposes. */
  registry: Registry;
}

/** Builds the service; throws when two routes share a method and path. */
export function createJsonService(options: JsonServiceOptions): JsonService {
  const { registry, logger } = options;
  const bodyLimit = options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES;
  const app: FastifyInstance = Fastify({
    logger: false,
    bodyLimit,
    // A slow sender cannot hold a request open for long.
    requestTimeout: 30_000,
    // HEAD is answered 405 like any method a path does not serve, not as an implicit GET.
    exposeHeadRoutes: false,
    frameworkErrors: (error, request, reply) => void writeFailure(reply, request, error),
  });
  // Only JSON bodies are accepted; fastify would otherwise parse text/plain too.
  app.removeContentTypeParser("text/plain");
  if (options.tracer) traceRequests(app, options.tracer);

  if (options.allowedHosts !== undefined) {
    const allowedHosts = new Set(options.allowedHosts.map(normalizeHostName));
    // The first hook: a foreign Host is refused before routing, authentication or the body.
    app.addHook("onRequest", async (request) => {
      const host = request.headers.host;
      if (!hostAllowed(host, allowedHosts)) {
        throw new HttpError(421, "misdirected_request", `Host ${JSON.stringify(host ?? "")} is not a name this service answers to (see its ALLOWED_HOSTS setting)`);
      }
    });
  }

  if (options.metricPrefix !== undefined) {
    const requests = new Counter({
      name: `${options.metricPrefix}_http_requests_total`,
      help: "HTTP requests answered, by route pattern, method and status.",
      labelNames: ["route", "method", "status"] as const,
      registers: [registry],
    });
    app.addHook("onResponse", async (request, reply) => {
      requests.inc({ route: routeLabel(request), method: request.method, status: String(reply.statusCode) });
    });
  }

  const side = [healthRoute(options.healthy), metricsRoute(registry)].map(
    (route): Route => ({ method: "GET", path: route.path, handle: () => route.answer() }),
  );
  const routes = [...side, ...options.routes];
  const allowed = new Map<string, HTTPMethods[]>();
  for (const route of routes) {
    app.route({
      method: route.method,
      url: route.path,
      onRequest: [...(route.guard ? [guardHook(route.guard)] : []), ...(route.method === "GET" ? [] : [requireJson])],
      handler: async (request, reply) => {
        const body = route.method === "GET" ? undefined : request.body;
        send(reply, await route.handle({ params: request.params as Record<string, string>, headers: request.headers, body }));
      },
    });
    allowed.set(route.path, [...(allowed.get(route.path) ?? []), route.method]);
  }
  // 405 and 404 are decided in onRequest, before fastify reads a body: a wrong method or path is answered as such whatever the body.
  for (const [path, methods] of allowed) {
    const allow = methods.join(", ");
    app.route({
      method: METHODS.filter((method) => !methods.includes(method)),
      url: path,
      onRequest: async (request) => {
        throw new HttpError(405, "method_not_allowed", `${request.method} is not allowed here (allowed: ${allow})`, { allow });
      },
      handler: async () => undefined,
    });
  }
  const notFound = async (request: FastifyRequest) => {
    throw new HttpError(404, "not_found", `no route for ${new URL(request.url, "http://service").pathname}`);
  };
  app.addHook("onRequest", async (request) => {
    if (request.is404) await notFound(request);
  });
  app.setNotFoundHandler(notFound);
  app.setErrorHandler((error, request, reply) => writeFailure(reply, request, error));

  /** Answers a failure as `{error, message}`; an error none of the known kinds is 500 with an id that is also logged. */
  function writeFailure(reply: FastifyReply, request: FastifyRequest, error: unknown): FastifyReply {
    if (error instanceof HttpError) {
      return reply.code(error.status).headers(error.headers).type(JSON_CONTENT_TYPE).send(failure(error.code, error.message));
    }
    if (error instanceof FieldError) return reply.code(400).type(JSON_CONTENT_TYPE).send(failure("invalid_request", error.message));
    const known = frameworkFailure(error, bodyLimit);
    if (known) return reply.code(known.status).type(JSON_CONTENT_TYPE).send(failure(known.code, known.message));
    const errorId = randomUUID();
    logger.error("request failed", {
      errorId,
      route: routeLabel(request),
      ...sessionLogFields(request.headers),
      error: error instanceof Error ? error.message : String(error),
    });
    return reply.code(500).type(JSON_CONTENT_TYPE).send(failure("internal", `internal error; logged as ${errorId}`));
  }

  return {
    registry,
    async listen(port, host) {
      await app.listen({ port, host });
      const address = app.server.address();
      if (address === null || typeof address === "string") throw new Error(`listening on an unexpected address: ${String(address)}`);
      const hostText = address.family === "IPv6" ? `[${address.address}]` : address.address;
      return new URL(`http://${hostText}:${address.port}/`);
    },
    close: () => app.close(),
  };
}

/** A route's guard as a fastify hook. */
function guardHook(guard: NonNullable<Route["guard"]>) {
  return async (request: FastifyRequest): Promise<void> => {
    await guard({ headers: request.headers });
  };
}

/** A host name as compared: lower case, without a trailing dot. */
function normalizeHostName(name: string): string {
  return name.toLowerCase().replace(/\.$/, "");
}

/** Whether a `Host` header names an IP literal or one of `allowed` (any port). */
function hostAllowed(host: string | undefined, allowed: ReadonlySet<string>): boolean {
  if (host === undefined || host === "") return false;
  const bracketed = /^\[([0-9A-Fa-f:.]+)\](?::\d{1,5})?$/.exec(host);
  if (bracketed) return isIP(bracketed[1] ?? "") === 6;
  const match = /^([^:]+)(?::\d{1,5})?$/.exec(host);
  if (!match?.[1]) return false;
  const name = normalizeHostName(match[1]);
  return isIP(name) === 4 || allowed.has(name);
}

/** Checked before the body is read, so a wrong type is 415 whatever its size, and so is a missing one. */
async function requireJson(request: FastifyRequest): Promise<void> {
  const contentType = request.headers["content-type"];
  if (!isJsonContentType(contentType)) {
    throw new HttpError(415, "unsupported_media_type", `content-type must be application/json, not ${JSON.stringify(contentType ?? "")}`);
  }
}

/** The route pattern a request matched, or `unmatched`. */
function routeLabel(request: FastifyRequest): string {
  return request.routeOptions.url ?? "unmatched";
}

function send(reply: FastifyReply, answer: Reply): void {
  reply.code(answer.status ?? 200);
  if ("text" in answer) {
    void reply.type(answer.contentType).send(answer.text);
    return;
  }
  // Serialized here, so a JSON string body is sent quoted rather than as text.
  void reply.headers(answer.headers ?? {}).type(JSON_CONTENT_TYPE).send(JSON.stringify(answer.json));
}

function failure(code: string, message: string): string {
  return JSON.stringify({ error: code, message });
}

/** Fastify's own request failures (body limit, JSON syntax, bad URL), in the service's terms. */
function frameworkFailure(error: unknown, bodyLimit: number): { status: number; code: string; message: string } | undefined {
  const { code, statusCode } = (error ?? {}) as { code?: unknown; statusCode?: unknown };
  switch (code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return { status: 413, code: "payload_too_large", message: `body must be at most ${bodyLimit} bytes` };
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
    case "FST_ERR_CTP_INVALID_JSON_BODY":
      return { status: 400, code: "invalid_request", message: "body is not valid JSON" };
    case "FST_ERR_BAD_URL":
      return { status: 400, code: "invalid_request", message: "the URL is not validly encoded" };
    default:
      // Other client errors fastify raises (a content length that lies, a prototype key in JSON).
      if (typeof statusCode === "number" && statusCode >= 400 && statusCode < 500) {
        return { status: statusCode, code: "invalid_request", message: (error as Error).message };
      }
      return undefined;
  }
}

/**
 * What an entry point does with its service: listens on the configured
 * address, logs it with `fields`, and on SIGTERM/SIGINT closes (in-flight
 * requests get `graceMs`) and exits.
 */
export async function serveUntilSignalled(
  service: JsonService,
  address: { host: string; port: number },
  logger: Logger,
  fields: Record<string, unknown> = {},
  graceMs = 10_000,
): Promise<void> {
  const url = await service.listen(address.port, address.host);
  logger.info("listening", { url: url.href, ...fields });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info("shutting down", { signal });
    setTimeout(() => process.exit(1), graceMs).unref();
    void service.close().then(() => process.exit(0));
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}
