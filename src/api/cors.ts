/**
 * CORS for browser callers of the API (Connect, gRPC-Web, REST): the allowed
 * origins from the configuration, Connect's lists of request and response
 * headers, plus `Authorization` and `Last-Event-ID` (server-sent events).
 */
import { Code, ConnectError, cors } from "@connectrpc/connect";
import { writeError, type HttpRequest, type HttpResponse } from "./http-responses.js";

const ALLOWED_HEADERS = [...cors.allowedHeaders, "Authorization", "Last-Event-ID"];
const ALLOWED_METHODS = [...new Set([...cors.allowedMethods, "GET", "POST"])].join(", ");
const EXPOSED_HEADERS = cors.exposedHeaders.join(", ");

/**
 * Builds the CORS step for `allowedOrigins` (`*` allows any). The step adds
 * the CORS headers to a request from an allowed origin and answers
 * preflights: 204 for an allowed origin, 403 PERMISSION_DENIED for another.
 * It returns true when it answered the request. `extraHeaders` are request
 * headers allowed beside the API's (e.g. the Temporal UI's `X-Namespace`).
 */
export function createCors(allowedOrigins: readonly string[], extraHeaders: readonly string[] = []): (req: HttpRequest, res: HttpResponse) => boolean {
  const allowedHeaders = [...ALLOWED_HEADERS, ...extraHeaders].join(", ");
  const allowAnyOrigin = allowedOrigins.includes("*");
  const allowed = new Set(allowedOrigins);
  return (req, res) => {
    const origin = req.headers.origin;
    if (typeof origin !== "string") return false;
    const preflight = req.method === "OPTIONS" && req.headers["access-control-request-method"] !== undefined;
    if (!allowAnyOrigin && !allowed.has(origin)) {
      if (preflight) writeError(res, new ConnectError(`origin ${origin} is not allowed`, Code.PermissionDenied));
      return preflight;
    }
    res.setHeader("access-control-allow-origin", origin);
    res.setHeader("vary", "Origin");
    res.setHeader("access-control-expose-headers", EXPOSED_HEADERS);
    if (!preflight) return false;
    res.writeHead(204, {
      "access-control-allow-methods": ALLOWED_METHODS,
      "access-control-allow-headers": allowedHeaders,
      "access-control-max-age": "7200",
    });
    res.end();
    return true;
  };
}
