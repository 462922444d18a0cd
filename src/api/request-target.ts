/**
 * The request target and authority, parsed once at the edge before any route
 * or library sees them. Node hands `req.url` and `Host`/`:authority` through
 * unchecked; `new URL()` on them throws for `//x:99999/`, `http://%zz/` or a
 * malformed host, so nothing past this point may parse them again.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import type { HttpRequest } from "./http-responses.js";

/**
 * The request's URL, with the target in origin-form (`/path?query`).
 * An absolute-form target (RFC 9112 §3.2.2) is accepted and `req.url` is
 * rewritten to its origin-form, so later routing sees one shape.
 * Throws INVALID_ARGUMENT naming what is malformed.
 */
export function parseRequestTarget(req: HttpRequest): URL {
  const authority = "authority" in req && req.authority ? req.authority : req.headers.host;
  if (typeof authority !== "string" || authority === "") {
    throw new ConnectError("the request has no Host header (or :authority)", Code.InvalidArgument);
  }
  const origin = originOf(authority);
  const target = req.url ?? "";
  if (target.startsWith("/")) {
    // Prefixed, not resolved: `//x:99999/` is a path here, never a scheme-relative URL.
    const url = parseTarget(origin + target);
    req.url = url.pathname + url.search;
    return url;
  }
  if (/^https?:\/\//i.test(target)) {
    const absolute = parseTarget(target);
    const url = new URL(absolute.pathname + absolute.search, origin);
    req.url = url.pathname + url.search;
    return url;
  }
  throw new ConnectError(`request target ${JSON.stringify(target.slice(0, 100))} is not a path`, Code.InvalidArgument);
}

/** `http://host[:port]` of a Host header; throws unless the header is exactly a host and an optional port. */
function originOf(authority: string): string {
  const url = tryUrl(`http://${authority}`);
  if (!url || url.username !== "" || url.password !== "" || url.pathname !== "/" || url.search !== "" || url.hash !== "" || authority.includes("/")) {
    throw new ConnectError(`Host header ${JSON.stringify(authority.slice(0, 100))} is not a host and port`, Code.InvalidArgument);
  }
  return url.origin;
}

function parseTarget(text: string): URL {
  const url = tryUrl(text);
  if (!url) throw new ConnectError("request target is not a valid URL path", Code.InvalidArgument);
  return url;
}

function tryUrl(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}
