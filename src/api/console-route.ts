/**
 * Serves the session console (console/, built by `npm run build:console`)
 * at `/` on the API's port, so its calls are same-origin. The built files
 * are read once at start-up into a table keyed by URL path: only those exact
 * paths are ever answered, so no request can reach another file (no
 * directory traversal by construction). Answers carry a strict
 * Content-Security-Policy (scripts, styles, images and calls from the API's
 * own origin only, no inline code, Trusted Types), an ETag for revalidation,
 * gzip when the browser accepts it, and caching that is safe: files whose
 * name carries esbuild's content hash are immutable, the others (the page
 * itself) are revalidated on every load.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { extname, join } from "node:path";
import { gzipSync } from "node:zlib";
import { methodNotAllowedError } from "./errors.js";
import { writeError, type HttpRequest, type HttpResponse } from "./http-responses.js";

/** The policy of every console answer: nothing but the API's own origin, nothing inline, no framing. */
export const CONSOLE_CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
  "trusted-types 'none'",
].join("; ");

const SECURITY_HEADERS = {
  "content-security-policy": CONSOLE_CONTENT_SECURITY_POLICY,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
  "x-frame-options": "DENY",
};

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
};

/** esbuild's `[name]-[hash]` output names (console/build.ts): the content decides the name. */
const CONTENT_HASHED_NAME = /-[A-Z0-9]{8}\.[a-z]+$/;

const METHODS = ["GET", "HEAD"];

/** One representation of a file: its bytes and validator. */
interface Representation {
  body: Buffer;
  etag: string;
}

/** A console file, as read at start-up. */
interface ConsoleFile {
  contentType: string;
  cacheControl: string;
  identity: Representation;
  gzip: Representation;
}

/** The built console, read into memory: URL path → file. */
export type ConsoleFiles = ReadonlyMap<string, ConsoleFile>;

/** Thrown at start-up when the console directory holds no built console. */
export class ConsoleNotBuiltError extends Error {
  constructor(readonly dir: string) {
    super(`${dir} holds no built session console (index.html): run \`npm run build:console\``);
    this.name = "ConsoleNotBuiltError";
  }
}

/**
 * Reads the built console in `dir` (its files of known types, not
 * subdirectories). Throws {@link ConsoleNotBuiltError} when `dir` has no
 * `index.html`.
 */
export function readConsoleFiles(dir: string): ConsoleFiles {
  if (!existsSync(join(dir, "index.html"))) throw new ConsoleNotBuiltError(dir);
  const files = new Map<string, ConsoleFile>();
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const contentType = CONTENT_TYPES[extname(entry.name)];
    if (!entry.isFile() || contentType === undefined) continue;
    const body = readFileSync(join(dir, entry.name));
    const file: ConsoleFile = {
      contentType,
      cacheControl: CONTENT_HASHED_NAME.test(entry.name) ? "public, max-age=31536000, immutable" : "no-cache",
      identity: representation(body, ""),
      gzip: representation(gzipSync(body, { level: 9 }), "-gzip"),
    };
    files.set(`/${entry.name}`, file);
    if (entry.name === "index.html") files.set("/", file);
  }
  return files;
}

function representation(body: Buffer, suffix: string): Representation {
  return { body, etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}${suffix}"` };
}

/**
 * Builds the console's request step: for a path of `files` it answers GET
 * and HEAD (200, or 304 when `If-None-Match` names the current ETag) and
 * refuses other methods with 405 and `Allow`, and returns true; for any
 * other path it returns false.
 */
export function createConsoleRoute(files: ConsoleFiles): (req: HttpRequest, res: HttpResponse, url: URL) => boolean {
  return (req, res, url) => {
    const file = files.get(url.pathname);
    if (!file) return false;
    if (!METHODS.includes(req.method ?? "")) {
      writeError(res, methodNotAllowedError(req.method ?? "", url.pathname, METHODS));
      return true;
    }
    // Answered once the request is read to its end: the server closes an HTTP/1.1
    // connection whose request is answered unread (server.ts), which would cost keep-alive.
    if (req.complete) answer(req, res, file);
    else {
      req.once("end", () => answer(req, res, file));
      req.resume();
    }
    return true;
  };
}

/** Writes `file` (gzipped when accepted), or 304 when the request names its current ETag. */
function answer(req: HttpRequest, res: HttpResponse, file: ConsoleFile): void {
  const chosen = acceptsGzip(req.headers["accept-encoding"]) ? file.gzip : file.identity;
  const headers = {
    ...SECURITY_HEADERS,
    "content-type": file.contentType,
    "cache-control": file.cacheControl,
    etag: chosen.etag,
    vary: "Accept-Encoding",
    ...(chosen === file.gzip && { "content-encoding": "gzip" }),
  };
  if (matchesEtag(req.headers["if-none-match"], chosen.etag)) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  res.writeHead(200, { ...headers, "content-length": String(chosen.body.length) });
  if (req.method === "HEAD") res.end();
  else res.end(chosen.body);
}

/** Whether an `Accept-Encoding` header admits gzip (RFC 9110 §12.5.3: `gzip` or `*`, with a non-zero q). */
function acceptsGzip(header: string | undefined): boolean {
  return (header ?? "").split(",").some((item) => {
    const [coding = "", ...parameters] = item.split(";").map((part) => part.trim().toLowerCase());
    const q = parameters.find((parameter) => parameter.startsWith("q="));
    return (coding === "gzip" || coding === "*") && (q === undefined || Number(q.slice(2)) > 0);
  });
}

/** Whether `If-None-Match` lists `etag` (weak comparison, RFC 9110 §13.1.2) or is `*`. */
function matchesEtag(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header.split(",").some((tag) => {
    const candidate = tag.trim().replace(/^W\//, "");
    return candidate === "*" || candidate === etag;
  });
}
