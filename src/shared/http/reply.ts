/**
 * What a route answers and how that answer is written on a bare Node response,
 * for the servers that route by hand (the API's port); services built with
 * {@link createJsonService} write the same answers through fastify.
 */
import type { OutgoingHttpHeaders } from "node:http";

/** Content type of every JSON answer. */
export const JSON_CONTENT_TYPE = "application/json; charset=utf-8";

/** A route's answer: a JSON body (status 200 unless given) or text of a given content type. */
export type Reply =
  | { status?: number; json: unknown; headers?: Record<string, string> }
  | { status?: number; text: string; contentType: string };

/** What the writers use of an HTTP/1.1 or HTTP/2 compatibility response. */
export interface WritableResponse {
  writeHead(status: number, headers?: OutgoingHttpHeaders): unknown;
  end(chunk: string): unknown;
}

/** Whether a `content-type` header declares JSON (`application/json`, any parameters). */
export function isJsonContentType(contentType: string | undefined): boolean {
  return /^application\/json\s*(;|$)/i.test(contentType ?? "");
}

/** Writes a JSON response with its length. */
export function writeJson(res: WritableResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, "content-type": JSON_CONTENT_TYPE, "content-length": String(Buffer.byteLength(text)) });
  res.end(text);
}

/** Writes `reply`. */
export function writeReply(res: WritableResponse, reply: Reply): void {
  if ("text" in reply) {
    res.writeHead(reply.status ?? 200, { "content-type": reply.contentType, "content-length": String(Buffer.byteLength(reply.text)) });
    res.end(reply.text);
    return;
  }
  writeJson(res, reply.status ?? 200, reply.json, reply.headers);
}
