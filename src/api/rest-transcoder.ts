/**
 * REST/JSON transcoding generated from the `google.api.http` annotations of
 * the served services: path templates, query parameters and the body are
 * bound into the request message, which then runs through the same
 * interceptors and handler implementation as gRPC and Connect. Responses are
 * proto JSON with proto field names. Server-streaming methods are served as
 * server-sent events: the response field marked `(sse_event_id)` is each
 * event's `id:`, and the `Last-Event-ID` header fills the request field marked
 * `(sse_last_event_id)`. Adding an annotated RPC needs no code here.
 */
import {
  ScalarType,
  fromJson,
  getOption,
  toJson,
  type DescField,
  type DescMessage,
  type DescMethod,
  type JsonObject,
  type JsonValue,
} from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createHandlerContext,
  createServiceImplSpec,
  type MethodImplSpec,
} from "@connectrpc/connect";
// Risk: connect-es internals (/protocol, no semver promise), pinned at 2.2.0; a signature change breaks every REST call (rest.test.ts fails).
import { createAsyncIterable, invokeUnaryImplementation, transformInvokeImplementation } from "@connectrpc/connect/protocol";
import { http } from "../../gen/google/api/annotations_pb.js";
import type { HttpRule } from "../../gen/google/api/http_pb.js";
import { sse_event_id, sse_last_event_id } from "../../gen/somagent/orchestrator/v1/sse_options_pb.js";
import { HttpStatusError, malformedBodyError, methodNotAllowedError, requestTooLargeError, statusJson, toConnectError, unsupportedMediaTypeError } from "./errors.js";
import { writeError, writeJson, type HttpRequest, type HttpResponse } from "./http-responses.js";
import { decodePathValue, matchPathTemplate, parsePathTemplate, type PathTemplate } from "./path-template.js";
import type { CallPipeline } from "./services.js";
import { StrictJsonError, parseStrictJson } from "./strict-json.js";

/** How the transcoder is wired: the shared call pipeline (its context values with protocol `rest`), and SSE's pace. */
export interface RestTranscoderOptions extends CallPipeline {
  /** Interval of SSE keep-alive comments. */
  heartbeatMs?: number;
}

/** The REST routes and the request handler serving them. */
export interface RestTranscoder {
  /** `METHOD /template` of every route, for logs and docs. */
  routes: readonly string[];
  /** Serves the request when `url` (the edge's parsed target) matches a route and returns true; returns false otherwise. */
  handle(req: HttpRequest, res: HttpResponse, url: URL): boolean;
}

interface Route {
  /** The HTTP method. */
  httpMethod: string;
  path: PathTemplate;
  /** Proto-name paths of the fields the template and a field body bind: never query parameters. */
  boundFields: string[];
  /** `*`, a field path, or "" for no body. */
  body: string;
  responseBody: string;
  spec: MethodImplSpec;
  /** Request field filled from `Last-Event-ID`, response field written as `id:`. */
  lastEventIdField: DescField | undefined;
  eventIdField: DescField | undefined;
}

const JSON_READ = { ignoreUnknownFields: false } as const;
const JSON_WRITE = { useProtoFieldName: true } as const;

/**
 * Compiles the routes of every annotated method. Throws at start-up when a
 * template is malformed or binds a field the request message lacks.
 */
export function createRestTranscoder(options: RestTranscoderOptions): RestTranscoder {
  const routes = options.services.flatMap(({ service, implementation }) => {
    const spec = createServiceImplSpec(service, implementation);
    return service.methods.flatMap((method) => {
      const methodSpec = spec.methods[method.localName];
      if (!methodSpec || method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming") return [];
      const rule = getOption(method, http);
      return [rule, ...rule.additionalBindings].filter((r) => r.pattern.case !== undefined).map((r) => compileRoute(r, methodSpec));
    });
  });

  const handle = (req: HttpRequest, res: HttpResponse, url: URL): boolean => {
    const matches = routes.flatMap((route) => {
      const values = matchPathTemplate(route.path, url.pathname);
      return values ? [{ route, values }] : [];
    });
    if (matches.length === 0) return false;
    const served = matches.filter((m) => m.route.httpMethod === req.method);
    if (served.length === 0) {
      const allowed = [...new Set(matches.map((m) => m.route.httpMethod))].sort();
      writeError(res, methodNotAllowedError(req.method ?? "", url.pathname, allowed));
      return true;
    }
    const match = mostSpecific(served);
    void serve(match.route, match.values, url, req, res).catch((error: unknown) => {
      writeError(res, toConnectError(error, options.logger));
    });
    return true;
  };

  async function serve(route: Route, pathValues: Map<string, string>, url: URL, req: HttpRequest, res: HttpResponse): Promise<void> {
    const { method } = route.spec;
    const startedAt = performance.now();
    let input;
    try {
      input = fromJson(method.input, await bindRequest(route, pathValues, url, req, options.maxBodyBytes), JSON_READ);
    } catch (error) {
      const rejected =
        error instanceof ConnectError || error instanceof HttpStatusError
          ? error
          : new ConnectError(error instanceof Error ? error.message : String(error), Code.InvalidArgument);
      // Never reached the interceptors: observed here the way the observe interceptor would.
      options.observer.begin(method, "rest", startedAt).finish(rejected instanceof HttpStatusError ? rejected.error : rejected);
      writeError(res, rejected);
      return;
    }
    const requestAbort = new AbortController();
    // Only a client gone before the answer is complete has a handler to stop (node-request.ts says why it matters).
    res.once("close", () => {
      if (!res.writableEnded) requestAbort.abort();
    });
    const context = createHandlerContext({
      service: method.parent,
      method,
      protocolName: "rest",
      requestMethod: req.method ?? "GET",
      url: url.href,
      requestHeader: headersOf(req),
      requestSignal: requestAbort.signal,
      contextValues: options.contextValues(req),
    });
    if (route.spec.kind === "unary") {
      let output;
      try {
        output = await invokeUnaryImplementation(route.spec, context, input, options.interceptors);
      } catch (error) {
        writeError(res, ConnectError.from(error));
        return;
      }
      writeJson(res, 200, responseJson(route, method, output));
      return;
    }
    await streamEvents(route, method, context, input, res, requestAbort.signal);
  }

  async function streamEvents(
    route: Route,
    method: DescMethod,
    context: ReturnType<typeof createHandlerContext>,
    input: unknown,
    res: HttpResponse,
    closed: AbortSignal,
  ): Promise<void> {
    const outputs = transformInvokeImplementation(route.spec, context, options.interceptors)(createAsyncIterable([input as never]));
    const iterator = outputs[Symbol.asyncIterator]();
    let first: IteratorResult<unknown>;
    try {
      first = await iterator.next();
    } catch (error) {
      // Nothing was sent yet, so the failure is still an HTTP status (e.g. 404).
      writeError(res, ConnectError.from(error));
      return;
    }
    if (first.done) {
      // Nothing after the client's Last-Event-ID: 204 also stops EventSource reconnecting.
      res.writeHead(204);
      res.end();
      return;
    }
    res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", "x-accel-buffering": "no" });
    const send = (message: unknown) => {
      const id = route.eventIdField ? `id: ${String((message as Record<string, unknown>)[route.eventIdField.localName])}\n` : "";
      res.write(`${id}data: ${JSON.stringify(responseJson(route, method, message))}\n\n`);
    };
    const heartbeat = setInterval(() => res.write(": keep-alive\n\n"), options.heartbeatMs ?? 15_000);
    try {
      send(first.value);
      for (;;) {
        const next = await iterator.next();
        if (next.done) break;
        send(next.value);
      }
      if (!closed.aborted) res.write("event: end\ndata: {}\n\n");
    } catch (error) {
      res.write(`event: error\ndata: ${JSON.stringify(statusJson(ConnectError.from(error)))}\n\n`);
    } finally {
      clearInterval(heartbeat);
      res.end();
    }
  }

  return { routes: routes.map((r) => `${r.httpMethod} ${r.path.text}`), handle };
}

/**
 * Of the routes matching a path for one method, the one to serve: a template
 * that names the request's `:verb` binds it explicitly and wins over one that
 * would take it into a variable (`/v1/sessions/{id}:watch` over
 * `/v1/sessions/{id}`); then more literal segments win. Ties keep declaration
 * order, as in the proto.
 */
function mostSpecific<M extends { route: Route }>(matches: M[]): M {
  const namesVerb = (m: M) => Number(m.route.path.verb !== "");
  const literals = (m: M) => m.route.path.segments.filter((s) => s.kind === "literal").length;
  // Array.prototype.sort is stable: ties stay in declaration order.
  return [...matches].sort((a, b) => namesVerb(b) - namesVerb(a) || literals(b) - literals(a))[0] as M;
}

function compileRoute(rule: HttpRule, spec: MethodImplSpec): Route {
  const { method } = spec;
  const pattern = rule.pattern;
  if (pattern.case === undefined) throw new Error(`${method.name}: empty google.api.http rule`);
  const httpMethod = pattern.case === "custom" ? pattern.value.kind : pattern.case.toUpperCase();
  const path = parsePathTemplate(pattern.case === "custom" ? pattern.value.path : pattern.value);
  const boundFields = path.variables.map((v) => protoPath(method.input, v.fieldPath, `${method.name}: template ${path.text}`));
  if (rule.body !== "" && rule.body !== "*") boundFields.push(protoPath(method.input, rule.body, `${method.name}: body`));
  const fields = (message: DescMessage, option: typeof sse_event_id) => message.fields.find((f) => getOption(f, option));
  return {
    httpMethod,
    path,
    boundFields,
    body: rule.body,
    responseBody: rule.responseBody,
    spec,
    lastEventIdField: fields(method.input, sse_last_event_id),
    eventIdField: fields(method.output, sse_event_id),
  };
}

/** The fields along a dotted path (proto or JSON names); throws INVALID_ARGUMENT naming `where` when one is absent. */
function fieldsAt(message: DescMessage, path: string, where: string): DescField[] {
  let current: DescMessage | undefined = message;
  const fields: DescField[] = [];
  for (const name of path.split(".")) {
    const field: DescField | undefined = current?.fields.find((f) => f.name === name || f.jsonName === name);
    if (!field) throw new ConnectError(`${where}: unknown field "${path}"`, Code.InvalidArgument);
    fields.push(field);
    current = field.fieldKind === "message" ? field.message : undefined;
  }
  return fields;
}

/** The field at a dotted path; throws like {@link fieldsAt}. */
function fieldAt(message: DescMessage, path: string, where: string): DescField {
  return fieldsAt(message, path, where).at(-1) as DescField;
}

/** A dotted path spelled with proto names, whichever names it was written with; throws like {@link fieldsAt}. */
function protoPath(message: DescMessage, path: string, where: string): string {
  return fieldsAt(message, path, where)
    .map((f) => f.name)
    .join(".");
}

/** True when one field path is the other or contains it (`a` and `a.b`). */
function overlaps(a: string, b: string): boolean {
  return a === b || a.startsWith(`${b}.`) || b.startsWith(`${a}.`);
}

/**
 * Builds the request's proto JSON from body, path variables, query and
 * Last-Event-ID. A query parameter naming a field the path or a field body
 * binds is INVALID_ARGUMENT: per HttpRule such a field is not a query parameter.
 */
async function bindRequest(route: Route, pathValues: Map<string, string>, url: URL, req: HttpRequest, maxBodyBytes: number): Promise<JsonObject> {
  const { method } = route.spec;
  let json: JsonObject = {};
  const raw = await readBody(req, maxBodyBytes);
  if (route.body !== "") {
    const contentType = String(req.headers["content-type"] ?? "");
    if (raw.length > 0 && !/^application\/json\s*(;|$)/i.test(contentType)) {
      throw unsupportedMediaTypeError(contentType);
    }
    const body = parseJson(raw);
    if (route.body === "*") {
      // No body at all is the empty message (`POST …:cancel` needs none); a body must be an object.
      if (body !== undefined && (typeof body !== "object" || body === null || Array.isArray(body))) {
        throw new ConnectError("request body must be a JSON object", Code.InvalidArgument);
      }
      json = (body ?? {}) as JsonObject;
    } else if (body !== undefined) {
      setPath(json, route.body, body);
    }
  } else if (raw.length > 0) {
    throw new ConnectError(`${route.httpMethod} ${route.path.text} takes no request body`, Code.InvalidArgument);
  }
  route.path.variables.forEach((variable, i) => {
    const field = route.boundFields[i] as string;
    let value: string;
    try {
      value = decodePathValue(pathValues.get(variable.fieldPath) ?? "", variable.multiSegment);
    } catch {
      throw new ConnectError(`${field}: the path segment is not valid percent-encoding`, Code.InvalidArgument);
    }
    setPath(json, field, scalarJson(fieldAt(method.input, field, "path"), value));
  });
  for (const [key, value] of url.searchParams) {
    if (route.body === "*") {
      throw new ConnectError(`query parameter "${key}" is not accepted: the body carries the whole request`, Code.InvalidArgument);
    }
    const path = protoPath(method.input, key, "query parameter");
    const bound = route.boundFields.findIndex((b) => overlaps(path, b));
    if (bound >= 0) {
      const by = bound < route.path.variables.length ? "path" : "body";
      throw new ConnectError(`query parameter "${key}" is not accepted: field ${route.boundFields[bound]} is bound by the ${by}`, Code.InvalidArgument);
    }
    const field = fieldAt(method.input, path, "query parameter");
    const converted = scalarJson(field, value);
    if (field.fieldKind === "list") {
      const existing = getPath(json, path);
      setPath(json, path, [...(Array.isArray(existing) ? existing : []), converted]);
    } else {
      setPath(json, path, converted);
    }
  }
  const lastEventId = req.headers["last-event-id"];
  if (route.lastEventIdField && typeof lastEventId === "string" && lastEventId !== "") {
    json[route.lastEventIdField.name] = lastEventId;
  }
  return json;
}

/** Path and query values are strings; booleans must become JSON booleans, the rest parse from strings. */
function scalarJson(field: DescField, value: string): JsonValue {
  const scalar = field.fieldKind === "scalar" || field.fieldKind === "list" ? field.scalar : undefined;
  if (scalar === ScalarType.BOOL) {
    if (value === "true" || value === "false") return value === "true";
    throw new ConnectError(`${field.name}: "${value}" is not true or false`, Code.InvalidArgument);
  }
  return value;
}

function setPath(json: JsonObject, path: string, value: JsonValue): void {
  const names = path.split(".");
  let current = json;
  for (const name of names.slice(0, -1)) {
    const next = current[name];
    if (typeof next !== "object" || next === null || Array.isArray(next)) current[name] = {};
    current = current[name] as JsonObject;
  }
  current[names[names.length - 1] as string] = value;
}

function getPath(json: JsonObject, path: string): JsonValue | undefined {
  let current: JsonValue | undefined = json;
  for (const name of path.split(".")) {
    current = typeof current === "object" && current !== null && !Array.isArray(current) ? current[name] : undefined;
  }
  return current;
}

/** The body as strict JSON (see strict-json.ts): bad UTF-8 and duplicate keys are INVALID_ARGUMENT naming the field. */
export function parseJson(raw: Buffer): JsonValue | undefined {
  if (raw.length === 0) return undefined;
  try {
    return parseStrictJson(raw);
  } catch (error) {
    if (error instanceof StrictJsonError) throw malformedBodyError(error.message, error.field);
    throw new ConnectError(`request body is not valid JSON: ${(error as Error).message}`, Code.InvalidArgument);
  }
}

/** Reads the whole body, failing with RESOURCE_EXHAUSTED (HTTP 413) past `limit` bytes without buffering more. */
export async function readBody(req: HttpRequest, limit: number): Promise<Buffer> {
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > limit) throw requestTooLargeError(limit);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw requestTooLargeError(limit);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function responseJson(route: Route, method: DescMethod, message: unknown): JsonValue {
  const json = toJson(method.output, message as never, JSON_WRITE) as JsonObject;
  return route.responseBody === "" ? json : (getPath(json, route.responseBody) ?? null);
}

function headersOf(req: HttpRequest): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (name.startsWith(":") || value === undefined) continue;
    for (const item of Array.isArray(value) ? value : [value]) headers.append(name, item);
  }
  return headers;
}
