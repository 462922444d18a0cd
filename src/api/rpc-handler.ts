/**
 * The gRPC, gRPC-Web and Connect side of the port: connect-es's router behind
 * a small Node adapter (what `connectNodeAdapter` does, plus one step; the
 * request side is node-request.ts). Before
 * the router sees a call to a method that takes one message (unary and
 * server-streaming), the body is read here and its message checked: JSON
 * strictly (strict-json.ts: bad UTF-8 and duplicate keys, which connect-es
 * lets through), protobuf by parsing it, and the framing for exactly one
 * message. connect-es answers a message that is not protobuf with INTERNAL
 * ("parse binary", not configurable) and a missing message with UNIMPLEMENTED;
 * here such a body is INVALID_ARGUMENT, naming the field where one can be
 * named. The refusal is raised through the router's `requestGate` option, so
 * each protocol writes it in its own format; the checked bytes are handed on
 * and connect-es parses them again (at most the body limit, twice).
 */
import { fromBinary, type DescMessage } from "@bufbuild/protobuf";
import { base64Decode } from "@bufbuild/protobuf/wire";
// Risk: `requestGate` is declared on UniversalHandlerOptions, which connect-es marks private, though the public
// ConnectRouterOptions extends it (connect-es 2.2.0, pinned); if it changes, protocols.test.ts "malformed requests" fails.
import { Code, ConnectError, createConnectRouter, createContextKey, createContextValues } from "@connectrpc/connect";
// Risk: type only, from connect-es internals (/protocol, no semver promise), pinned at 2.2.0; a change fails tsc.
import type { UniversalHandler, UniversalServerRequest } from "@connectrpc/connect/protocol";
import { compressionBrotli, compressionGzip, universalResponseToNodeResponse } from "@connectrpc/connect-node";
import { malformedBodyError } from "./errors.js";
import type { HttpRequest, HttpResponse } from "./http-responses.js";
import { PROTOCOL } from "./interceptors.js";
import { universalRequestOf } from "./node-request.js";
import type { CallPipeline } from "./services.js";
import { StrictJsonError, parseStrictJson } from "./strict-json.js";

/** How the RPC handler is wired: the shared call pipeline, and what answers a path that is no procedure. */
export interface RpcHandlerOptions extends CallPipeline {
  /** Answers a path that is no procedure. */
  fallback(req: HttpRequest, res: HttpResponse): void;
}

const BODY_REFUSAL = createContextKey<ConnectError | undefined>(undefined, { description: "why the request body was refused" });

const COMPRESSIONS = [compressionGzip, compressionBrotli];

/** Builds the handler of every gRPC, gRPC-Web and Connect request. */
export function createRpcHandler(options: RpcHandlerOptions): (req: HttpRequest, res: HttpResponse) => void {
  const router = createConnectRouter({
    interceptors: options.interceptors,
    readMaxBytes: options.maxBodyBytes,
    jsonOptions: { ignoreUnknownFields: false },
    acceptCompression: COMPRESSIONS,
    requestGate(context) {
      const refusal = context.values.get(BODY_REFUSAL);
      if (!refusal) return;
      options.observer.begin(context.method, context.values.get(PROTOCOL)).finish(refusal);
      throw refusal;
    },
  });
  for (const { service, implementation } of options.services) router.service(service, implementation);
  const paths = new Map(router.handlers.map((handler) => [handler.requestPath, handler]));

  return (req, res) => {
    const handler = paths.get(req.url?.split("?", 2)[0] ?? "");
    if (!handler) {
      options.fallback(req, res);
      return;
    }
    const nodeRes = res as Parameters<typeof universalResponseToNodeResponse>[1];
    const uReq = universalRequestOf(req, nodeRes, options.contextValues(req));
    checkBody(handler, uReq, options.maxBodyBytes)
      .then((checked) => handler(checked))
      .then((uRes) => universalResponseToNodeResponse(uRes, nodeRes))
      .catch((reason: unknown) => {
        // The client went away mid-call: nothing to answer.
        if (ConnectError.from(reason).code === Code.Aborted) return;
        options.logger.error("rpc handler failed", { method: `${handler.service.typeName}/${handler.method.name}`, error: String(reason) });
      });
  };
}

/** How a request carries its one message. */
interface WireFormat {
  /** `unary`: the body is the message (Connect unary); `enveloped`: length-prefixed messages (gRPC, gRPC-Web, Connect streaming). */
  framing: "unary" | "enveloped";
  binary: boolean;
  /** The header naming the message compression. */
  encodingHeader: string;
}

/** The wire format of a POST to a one-message method, from its content type; undefined when connect-es will refuse it anyway (415). */
function wireFormat(contentType: string, methodKind: string): WireFormat | undefined {
  let m: RegExpExecArray | null;
  if (methodKind === "unary" && (m = /^application\/(?:json(?:; ?charset=utf-?8)?|(proto))$/i.exec(contentType))) {
    return { framing: "unary", binary: m[1] !== undefined, encodingHeader: "content-encoding" };
  }
  if (methodKind === "server_streaming" && (m = /^application\/connect\+(?:json(?:; ?charset=utf-?8)?|(proto))$/i.exec(contentType))) {
    return { framing: "enveloped", binary: m[1] !== undefined, encodingHeader: "connect-content-encoding" };
  }
  if ((m = /^application\/grpc(?:-web)?(?:\+(?:(json)(?:; ?charset=utf-?8)?|proto))?$/i.exec(contentType))) {
    return { framing: "enveloped", binary: m[1] === undefined, encodingHeader: "grpc-encoding" };
  }
  return undefined;
}

/**
 * Reads the body of a call to a one-message method and returns the request to
 * hand on: the same bytes, and the refusal (if any) in its context values.
 */
async function checkBody(handler: UniversalHandler, req: UniversalServerRequest, maxBytes: number): Promise<UniversalServerRequest> {
  const kind = handler.method.methodKind;
  if (kind !== "unary" && kind !== "server_streaming") return req;
  const refuse = (refusal: ConnectError | undefined): UniversalServerRequest => {
    if (refusal) (req.contextValues ??= createContextValues()).set(BODY_REFUSAL, refusal);
    return req;
  };
  if (req.method === "GET") return kind === "unary" ? refuse(await checkQueryMessage(handler.method.input, req.url, maxBytes)) : req;
  const format = wireFormat(req.header.get("content-type") ?? "", kind);
  if (req.method !== "POST" || !format || !isByteStream(req.body)) return req;
  // One message at the limit, with its prefix when enveloped: anything longer is refused unread.
  const largest = maxBytes + (format.framing === "enveloped" ? 5 : 0);
  const iterator = req.body[Symbol.asyncIterator]();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
    chunks.push(next.value);
    size += next.value.byteLength;
    if (size > largest) break;
  }
  const body = Buffer.concat(chunks);
  req.body = (async function* () {
    yield body;
  })();
  if (size > largest) return refuse(oversizedBody(handler.method.input, format, body, maxBytes));
  const encoding = req.header.get(format.encodingHeader);
  if (format.framing === "unary") return refuse(await checkMessage(handler.method.input, format.binary, body, encoding, maxBytes));
  return refuse(await checkEnvelopes(handler.method.input, format.binary, body, encoding, maxBytes));
}

/**
 * A body longer than one message at the limit (the rest is never read): over
 * the limit (RESOURCE_EXHAUSTED, as connect-es answers it) when its first
 * message is, else malformed, since it carries more than the one message.
 */
function oversizedBody(desc: DescMessage, format: WireFormat, head: Uint8Array, maxBytes: number): ConnectError {
  const declared = format.framing === "enveloped" ? new DataView(head.buffer, head.byteOffset + 1, 4).getUint32(0) : head.length;
  if (format.framing === "unary" || declared > maxBytes) {
    return new ConnectError(`the request message exceeds the limit of ${maxBytes} bytes`, Code.ResourceExhausted);
  }
  return malformedBodyError(`the request must carry exactly one ${desc.typeName} message; it carries more`);
}

function isByteStream(body: unknown): body is AsyncIterable<Uint8Array> {
  return typeof body === "object" && body !== null && Symbol.asyncIterator in body;
}

/** The one message of an enveloped body; refusals for none, several, or a compressed one without an encoding. */
async function checkEnvelopes(desc: DescMessage, binary: boolean, body: Uint8Array, encoding: string | null, maxBytes: number): Promise<ConnectError | undefined> {
  const messages: { flags: number; data: Uint8Array }[] = [];
  for (let offset = 0; offset < body.length; ) {
    if (body.length - offset < 5) return malformedBodyError(`the request ends inside a message prefix (${body.length - offset} of 5 bytes)`);
    const flags = body[offset] as number;
    const length = new DataView(body.buffer, body.byteOffset + offset + 1, 4).getUint32(0);
    if (offset + 5 + length > body.length) {
      return malformedBodyError(`the request is truncated: a message prefix promises ${length} bytes, ${body.length - offset - 5} follow`);
    }
    // A client sends data messages only: 0, or 1 for compressed.
    if ((flags & ~0x01) !== 0) return malformedBodyError(`the request carries a message with unknown flags 0x${flags.toString(16)}`);
    messages.push({ flags, data: body.subarray(offset + 5, offset + 5 + length) });
    offset += 5 + length;
  }
  if (messages.length !== 1) return malformedBodyError(`the request must carry exactly one ${desc.typeName} message; it carries ${messages.length}`);
  const [message] = messages as [{ flags: number; data: Uint8Array }];
  if ((message.flags & 0x01) === 0) return checkMessage(desc, binary, message.data, null, maxBytes);
  if (encoding === null || encoding === "identity") return malformedBodyError("the request message is flagged compressed, but the request names no message encoding");
  return checkMessage(desc, binary, message.data, encoding, maxBytes);
}

/** A Connect GET's message, from the query (`encoding`, `message`, `base64`, `compression`). */
async function checkQueryMessage(desc: DescMessage, url: string, maxBytes: number): Promise<ConnectError | undefined> {
  const query = new URL(url).searchParams;
  const encoding = query.get("encoding");
  if (encoding !== "json" && encoding !== "proto") return undefined;
  let bytes: Uint8Array;
  try {
    const message = query.get("message") ?? "";
    bytes = query.get("base64") === "1" ? base64Decode(message) : new TextEncoder().encode(message);
  } catch {
    return malformedBodyError("the message query parameter is not valid base64");
  }
  return checkMessage(desc, encoding === "proto", bytes, query.get("compression"), maxBytes);
}

/** Decompresses (when `encoding` names a known compression) and parses one message; the refusal, or undefined. */
async function checkMessage(desc: DescMessage, binary: boolean, data: Uint8Array, encoding: string | null, maxBytes: number): Promise<ConnectError | undefined> {
  let bytes = data;
  if (encoding !== null && encoding !== "identity") {
    const compression = COMPRESSIONS.find((c) => c.name === encoding);
    // An unknown encoding is UNIMPLEMENTED, which connect-es answers itself.
    if (!compression) return undefined;
    try {
      bytes = await compression.decompress(bytes, maxBytes);
    } catch (error) {
      const code = ConnectError.from(error).code;
      if (code === Code.ResourceExhausted) return undefined;
      return malformedBodyError(`the request message does not decompress as ${encoding}`);
    }
  }
  if (binary) {
    try {
      fromBinary(desc, bytes);
    } catch (error) {
      return malformedBodyError(`the request is not a valid ${desc.typeName} message: ${error instanceof Error ? error.message : String(error)}`);
    }
    return undefined;
  }
  if (bytes.length === 0) return undefined;
  try {
    parseStrictJson(bytes);
  } catch (error) {
    if (error instanceof StrictJsonError) return malformedBodyError(error.message, error.field);
    // Other malformed JSON: connect-es refuses it with INVALID_ARGUMENT and its own message.
  }
  return undefined;
}
