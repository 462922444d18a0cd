/**
 * The API server: one cleartext port serving gRPC (h2c prior knowledge),
 * gRPC-Web, Connect and REST/JSON over HTTP/1.1 and HTTP/2, plus `/health`,
 * `/ready`, `/metrics`, `/openapi.json`, the codec endpoint for the Temporal
 * UI, gRPC health and server reflection, and the session console at `/`. Tests start it on
 * port 0; only `main.ts` listens on the configured port.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Code, ConnectError, createContextValues, type ContextValues } from "@connectrpc/connect";
import { trace, type Tracer } from "@opentelemetry/api";
import type { PayloadCodec } from "@temporalio/common";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import { ServerReflection as ReflectionV1 } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ReflectionV1alpha } from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { SessionService } from "../../gen/somagent/orchestrator/v1/session_pb.js";
import { writeReply } from "../shared/http/reply.js";
import { healthRoute, metricsRoute, type SideRoute } from "../shared/http/side-routes.js";
import { createLogger, type Logger } from "../shared/logger.js";
import { API_MAX_REQUEST_BYTES, DEFAULT_EDGE_LIMITS, type ApiAuthConfig, type EdgeLimits } from "../config.js";
import type { Registry } from "../shared/metrics.js";
import type { SessionPort } from "../temporal/session-port.js";
import { createAuthInterceptor, createJwtVerifier } from "./auth.js";
import { createCodecEndpoint } from "./codec-endpoint.js";
import { createConsoleRoute, type ConsoleFiles } from "./console-route.js";
import { createCors } from "./cors.js";
import { shuttingDownError, toConnectError } from "./errors.js";
import { createFrontDoor } from "./front-door.js";
import { createHealthService } from "./health-service.js";
import { writeError, type HttpRequest, type HttpResponse } from "./http-responses.js";
import { PROTOCOL, createErrorInterceptor, createObserveInterceptor, createValidationInterceptor, protocolOf } from "./interceptors.js";
import { createApiMetrics } from "./metrics.js";
import { createCallObserver } from "./observation.js";
import { openApiRoute } from "./openapi.js";
import { createReadiness, type Readiness } from "./readiness.js";
import { createReflectionServices } from "./reflection-service.js";
import { parseRequestTarget } from "./request-target.js";
import { createRestTranscoder } from "./rest-transcoder.js";
import { createRpcHandler } from "./rpc-handler.js";
import { createSessionService } from "./session-service.js";
import { registration } from "./services.js";
import { CALLER, createStreamLimitsInterceptor } from "./stream-limits.js";

/** What the server needs from outside. */
export interface ApiServerDeps {
  sessions: SessionPort;
  /** Where the API's metrics are registered and what `/metrics` serves; one server per registry. */
  registry: Registry;
  /** Origins allowed to call from browsers; `*` allows any. */
  corsAllowedOrigins: readonly string[];
  /** Time in-flight calls get to finish on shutdown. */
  shutdownGraceMs: number;
  logger?: Logger;
  tracer?: Tracer;
  /** Largest accepted request body or message (default 256 KiB). */
  maxBodyBytes?: number;
  /** Timeouts and caps of the port (defaults: the configuration's defaults). */
  limits?: EdgeLimits;
  /** Caller authentication of SessionService; unset, the API is open (one warning is logged). */
  auth?: ApiAuthConfig;
  /** How often Temporal is probed for readiness (default 2 s). */
  readinessIntervalMs?: number;
  /** Interval of keep-alive comments on server-sent event streams (default 15 s). */
  sseHeartbeatMs?: number;
  /** Serves Temporal's remote codec protocol at `/codec/*` with this codec, for the Temporal Web UI at these origins (see codec-endpoint.ts). */
  codecEndpoint?: { codec: PayloadCodec; namespace: string; allowedOrigins: readonly string[] };
  /** The built session console, served at `/` (see console-route.ts); unset, none is served. */
  consoleFiles?: ConsoleFiles;
}

/** A running (or ready to run) API server. */
export interface ApiServer {
  /** Listens on `port` (0 for a free one); resolves with the bound address. Throws when the port is taken. */
  listen(port: number, host?: string): Promise<AddressInfo>;
  /** Readiness as `/ready` and gRPC health report it. */
  readiness: Readiness;
  /** `METHOD /template` of each REST route. */
  restRoutes: readonly string[];
  /**
   * Drains: readiness false, the port closed, new requests on open
   * connections refused (503 / UNAVAILABLE, HTTP/2 GOAWAY), open streams ended
   * cleanly, in-flight unary calls finished; connections still open after
   * `shutdownGraceMs` are cut. Never throws.
   */
  shutdown(): Promise<void>;
}


/**
 * Builds the server; throws at start-up when a REST annotation is malformed
 * or `deps.registry` already holds the API's metrics.
 */
export function createServer(deps: ApiServerDeps): ApiServer {
  const logger = deps.logger ?? createLogger("somagent-orchestrator-api");
  const tracer = deps.tracer ?? trace.getTracer("somagent-orchestrator-api");
  const maxBodyBytes = deps.maxBodyBytes ?? API_MAX_REQUEST_BYTES;
  const readiness = createReadiness(() => deps.sessions.ping(2_000), deps.readinessIntervalMs ?? 2_000);
  readiness.subscribe((ready) =>
    logger.info("readiness changed", { ready, temporal: readiness.temporalReachable() ? "reachable" : "unreachable", shuttingDown: readiness.shuttingDown() }),
  );
  // Aborted on shutdown to end open streams; unary calls are not cancelled, they finish.
  const drainController = new AbortController();
  const observer = createCallObserver({ metrics: createApiMetrics(deps.registry), logger, tracer });
  const limits = deps.limits ?? DEFAULT_EDGE_LIMITS;
  if (deps.auth) {
    logger.info("caller authentication on", { jwksUrl: deps.auth.jwksUrl.href, issuer: deps.auth.issuer, audience: deps.auth.audience });
  } else {
    logger.warn("the API is unauthenticated: any caller may start sessions for any tenant and user and read every session, tokens included; set API_AUTH_JWKS_URL, API_AUTH_ISSUER and API_AUTH_AUDIENCE to require bearer tokens");
  }
  const verifier = deps.auth && createJwtVerifier(deps.auth, logger);
  const interceptors = [
    createObserveInterceptor(observer),
    createErrorInterceptor(logger),
    // Before the stream limits (which count per authenticated caller) and validation.
    createAuthInterceptor(verifier, [SessionService]),
    createStreamLimitsInterceptor(limits, drainController.signal),
    createValidationInterceptor(),
  ];

  const served = [SessionService, Health, ReflectionV1, ReflectionV1alpha];
  const reflection = createReflectionServices(served);
  const services = [
    registration(SessionService, createSessionService(deps.sessions)),
    registration(Health, createHealthService(readiness, [SessionService.typeName], drainController.signal)),
    registration(ReflectionV1, reflection.v1),
    registration(ReflectionV1alpha, reflection.v1alpha),
  ];

  const pipeline = { services, interceptors, observer, maxBodyBytes, logger };
  const transcoder = createRestTranscoder({
    ...pipeline,
    contextValues: (req) => callContext(req, "rest"),
    heartbeatMs: deps.sseHeartbeatMs,
  });
  const rpcHandler = createRpcHandler({
    ...pipeline,
    contextValues: (req) => callContext(req, protocolOf(req.headers["content-type"])),
    fallback: (req, res) => writeError(res, new ConnectError(`no route for ${req.method} ${req.url}`, Code.NotFound)),
  });

  const applyCors = createCors(deps.corsAllowedOrigins);
  const consoleRoute = deps.consoleFiles && createConsoleRoute(deps.consoleFiles);
  const codecEndpoint = deps.codecEndpoint && createCodecEndpoint({ ...deps.codecEndpoint, verifier, logger, registry: deps.registry });
  /** `GET` routes answered before any protocol, also while shutting down. */
  const sideRoutes = new Map(
    [
      healthRoute(),
      {
        path: "/ready",
        answer: () => {
          const body = { ready: readiness.isReady(), temporal: readiness.temporalReachable() ? "reachable" : "unreachable", shuttingDown: readiness.shuttingDown() };
          return { status: body.ready ? 200 : 503, json: body };
        },
      } satisfies SideRoute,
      metricsRoute(deps.registry),
      openApiRoute(),
    ].map((route) => [route.path, route]),
  );

  let inFlight = 0;
  let drained: (() => void) | undefined;

  function handle(req: HttpRequest, res: HttpResponse): void {
    inFlight += 1;
    res.once("close", () => {
      inFlight -= 1;
      if (inFlight === 0) drained?.();
    });
    if (req.httpVersionMajor === 1) closeIfBodyUnread(req as http.IncomingMessage, res as http.ServerResponse);
    try {
      route(req, res);
    } catch (error) {
      // A malformed target or header is INVALID_ARGUMENT; anything else thrown here is INTERNAL with an id, never a crash.
      writeError(res, toConnectError(error, logger));
    }
  }

  function route(req: HttpRequest, res: HttpResponse): void {
    const url = parseRequestTarget(req);
    // Before the API's CORS: the UI's origin is allowed here only.
    if (codecEndpoint?.(req, res, url)) return;
    if (applyCors(req, res)) return;
    if (consoleRoute?.(req, res, url)) return;
    const side = req.method === "GET" ? sideRoutes.get(url.pathname) : undefined;
    if (side) {
      Promise.resolve()
        .then(() => side.answer())
        .then(
          (reply) => writeReply(res, reply),
          (error: unknown) => writeError(res, toConnectError(error, logger)),
        );
      return;
    }
    if (readiness.shuttingDown()) {
      // HTTP/1.1 clients drop the connection; HTTP/2 ones already got GOAWAY.
      if (req.httpVersionMajor === 1) res.setHeader("connection", "close");
      writeError(res, shuttingDownError());
      return;
    }
    if (transcoder.handle(req, res, url)) return;
    rpcHandler(req, res);
  }

  const door = createFrontDoor(handle, limits, logger);

  let shuttingDown: Promise<void> | undefined;

  return {
    readiness,
    restRoutes: transcoder.routes,

    listen(port, host = "127.0.0.1") {
      return door.listen(port, host);
    },

    shutdown() {
      shuttingDown ??= (async () => {
        readiness.beginShutdown();
        readiness.stop();
        const closed = door.close();
        // Past the grace period, whatever is still open is cut.
        let connectionsCut = 0;
        const deadline = setTimeout(() => (connectionsCut = door.destroyAll()), deps.shutdownGraceMs);
        deadline.unref();
        // Open streams (Watch, health Watch) see their signal abort and end cleanly.
        drainController.abort();
        if (inFlight > 0) await new Promise<void>((resolve) => (drained = resolve));
        // HTTP/1.1 connections are idle now: end them after their last bytes are written.
        door.endHttp1();
        await closed;
        clearTimeout(deadline);
        logger.info("server stopped", { connectionsCut });
      })();
      return shuttingDown;
    },
  };
}

/**
 * A call answered before its body was read to the end (e.g. over the size
 * limit, which Connect detects mid-body) leaves the rest of the body on an
 * HTTP/1.1 connection that cannot carry another request: answer with
 * `Connection: close` so the client opens a new one instead of stalling.
 */
function closeIfBodyUnread(req: http.IncomingMessage, res: http.ServerResponse): void {
  const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => http.ServerResponse;
  res.writeHead = ((...args: unknown[]) => {
    if (!req.complete && !res.headersSent) res.setHeader("connection", "close");
    return writeHead(...args);
  }) as typeof res.writeHead;
}

/** The values every call of every protocol starts with: its wire protocol and who is calling. */
function callContext(req: HttpRequest, protocol: string): ContextValues {
  return createContextValues().set(PROTOCOL, protocol).set(CALLER, req.socket.remoteAddress ?? "unknown");
}
