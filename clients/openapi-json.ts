/**
 * Turns buf's OpenAPI document (`openapi/openapi.yaml`, written by gnostic's
 * protoc-gen-openapi from the `google.api.http` annotations) into the JSON the
 * API serves at `GET /openapi.json` (`openapi/openapi.json`). One correction:
 * the plugin declares every 200 as `application/json`, while the REST
 * transcoder serves a server-streaming method as server-sent events, so those
 * operations answer `text/event-stream` (each event's `data:` one message).
 * Run by clients/generate.sh: `tsx clients/openapi-json.ts <yaml> <json>`.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { parse } from "yaml";
import { SessionService } from "../gen/somagent/orchestrator/v1/session_pb.js";

interface Operation {
  operationId?: string;
  responses?: Record<string, { description?: string; content?: Record<string, unknown> }>;
}

const [source, target] = process.argv.slice(2);
if (!source || !target) throw new Error("usage: tsx clients/openapi-json.ts <openapi.yaml> <openapi.json>");
const document = parse(readFileSync(source, "utf8")) as { paths: Record<string, Record<string, Operation>> };

const streaming = new Set(
  [SessionService].flatMap((service) => service.methods.filter((m) => m.methodKind === "server_streaming").map((m) => `${service.name}_${m.name}`)),
);
for (const operation of Object.values(document.paths).flatMap((item) => Object.values(item))) {
  const ok = operation.responses?.["200"];
  if (!operation.operationId || !streaming.has(operation.operationId) || !ok?.content?.["application/json"]) continue;
  ok.description = "Server-sent events: each event's `data:` is one message, its `id:` the sequence; the stream ends with `event: end`.";
  ok.content = { "text/event-stream": ok.content["application/json"] };
}
writeFileSync(target, `${JSON.stringify(document, null, 2)}\n`);
