/**
 * A Node request as connect-es's universal server request: what connect-node's
 * `universalRequestFromNodeRequest` builds, except for when the call's signal
 * aborts. connect-node aborts it when the request closes, also after a
 * complete answer, and an abort without a reason builds a DOMException with
 * its stack: about a tenth of the CPU of a cheap unary call (issue 12's
 * profile of Get). Here it aborts only when the connection or stream closes
 * before the answer was complete, which is when a handler still has
 * something to stop; the reasons are connect-node's.
 */
import http2 from "node:http2";
import { Code, ConnectError, type ContextValues } from "@connectrpc/connect";
// Risk: type only, from connect-es internals (/protocol, no semver promise), pinned at 2.2.0; a change fails tsc.
import type { UniversalServerRequest } from "@connectrpc/connect/protocol";
import type { HttpRequest } from "./http-responses.js";

/** What the signal needs of the response: whether it was ended, and when it closes. */
export interface ClosingResponse {
  readonly writableEnded: boolean;
  once(event: "close", listener: () => void): unknown;
}

const { constants } = http2;

/** HTTP/2 reset codes and what they mean for the call (connect-node's mapping; STREAM_CLOSED deliberately unmapped). */
const RESET_CODES = new Map<number, Code>([
  [constants.NGHTTP2_PROTOCOL_ERROR, Code.Internal],
  [constants.NGHTTP2_INTERNAL_ERROR, Code.Internal],
  [constants.NGHTTP2_FLOW_CONTROL_ERROR, Code.Internal],
  [constants.NGHTTP2_SETTINGS_TIMEOUT, Code.Internal],
  [constants.NGHTTP2_FRAME_SIZE_ERROR, Code.Internal],
  [constants.NGHTTP2_COMPRESSION_ERROR, Code.Internal],
  [constants.NGHTTP2_CONNECT_ERROR, Code.Internal],
  [constants.NGHTTP2_REFUSED_STREAM, Code.Unavailable],
  [constants.NGHTTP2_CANCEL, Code.Canceled],
  [constants.NGHTTP2_ENHANCE_YOUR_CALM, Code.ResourceExhausted],
  [constants.NGHTTP2_INADEQUATE_SECURITY, Code.PermissionDenied],
  [constants.NGHTTP2_HTTP_1_1_REQUIRED, Code.PermissionDenied],
]);

/** Node errors that mean the client hung up (connect-node answers them ABORTED). */
const HANG_UPS = new Set(["ERR_STREAM_DESTROYED", "ERR_HTTP2_INVALID_STREAM", "ECONNRESET"]);

/** The universal request of `req`, answered through `res` (cleartext: the API's port has no TLS). */
export function universalRequestOf(req: HttpRequest, res: ClosingResponse, contextValues: ContextValues): UniversalServerRequest {
  const authority = "authority" in req ? req.authority : req.headers.host;
  if (authority === undefined) throw new ConnectError("unable to determine request authority from Node.js server request", Code.Internal);
  const controller = new AbortController();
  res.once("close", () => {
    if (!res.writableEnded) abortEarlyClose(controller, req);
  });
  const header = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (name.startsWith(":") || value === undefined) continue;
    for (const item of Array.isArray(value) ? value : [value]) header.append(name, String(item));
  }
  return {
    httpVersion: req.httpVersion,
    method: req.method ?? "",
    url: new URL(req.url ?? "", `http://${authority}`).toString(),
    header,
    body: req as AsyncIterable<Uint8Array>,
    signal: controller.signal,
    contextValues,
  };
}

/** Aborts with what the early close means: the stream's reset code over HTTP/2, the request's error over HTTP/1.1. */
function abortEarlyClose(controller: AbortController, req: HttpRequest): void {
  if ("stream" in req) {
    const code = RESET_CODES.get(req.stream.rstCode ?? constants.NGHTTP2_NO_ERROR);
    if (code !== undefined) {
      const rstCode = req.stream.rstCode as number;
      controller.abort(new ConnectError(`http/2 stream closed with error code 0x${rstCode.toString(16)}`, code));
      return;
    }
  } else if (req.errored) {
    const hangUp = HANG_UPS.has((req.errored as { code?: string }).code ?? "");
    controller.abort(ConnectError.from(req.errored, hangUp ? Code.Aborted : Code.Internal));
    return;
  }
  controller.abort();
}
