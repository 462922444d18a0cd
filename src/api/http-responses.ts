/**
 * The API's plain HTTP answers: JSON bodies (the shared kernel's writer) and
 * google.rpc.Status errors.
 */
import type { ConnectError } from "@connectrpc/connect";
import type { IncomingMessage, OutgoingHttpHeaders } from "node:http";
import type { Http2ServerRequest } from "node:http2";
import { writeJson } from "../shared/http/reply.js";
import { HttpStatusError, httpStatusOf, statusJson } from "./errors.js";

export { writeJson };

/** A request from the HTTP/1.1 or the HTTP/2 server. */
export type HttpRequest = IncomingMessage | Http2ServerRequest;

/** What the API uses of a response of the HTTP/1.1 or the HTTP/2 server. */
export interface HttpResponse {
  readonly headersSent: boolean;
  /** True once the answer was ended (`end()` called). */
  readonly writableEnded: boolean;
  writeHead(status: number, headers?: OutgoingHttpHeaders): unknown;
  setHeader(name: string, value: string | readonly string[]): unknown;
  write(chunk: string): boolean;
  end(): unknown;
  end(chunk: string | Uint8Array): unknown;
  once(event: "close", listener: () => void): unknown;
}

/**
 * Writes `error` as google.rpc.Status JSON with the status the error mapper
 * gives (or `status`), and the headers of an {@link HttpStatusError} or the
 * error's metadata (e.g. `WWW-Authenticate` with 401, as Connect sends it);
 * ends the response when headers were already sent.
 */
export function writeError(res: HttpResponse, error: ConnectError | HttpStatusError, status = httpStatusOf(error)): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  if (error instanceof HttpStatusError) writeJson(res, status, statusJson(error.error), { ...error.headers });
  else writeJson(res, status, statusJson(error), Object.fromEntries(error.metadata));
}
