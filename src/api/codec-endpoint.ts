/**
 * Temporal's remote codec protocol, so the Temporal Web UI (and `temporal
 * --codec-endpoint`) can show a session's input, result and failure instead
 * of `binary/encrypted`: `POST /codec/decode` and `POST /codec/encode` take
 * and answer `temporal.api.common.v1.Payloads` as proto JSON
 * (`{"payloads":[{"metadata":{"encoding":"<base64>"},"data":"<base64>"}]}`),
 * run through the API's own payload codec. The UI sends `X-Namespace`, and
 * `Authorization: Bearer <its access token>` when configured to pass it.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import type { Payload, PayloadCodec } from "@temporalio/common";
import type { JsonValue } from "@bufbuild/protobuf";
import { Counter } from "prom-client";
import { COMPANION_MAX_BODY_BYTES } from "../config.js";
import type { Logger } from "../shared/logger.js";
import type { Registry } from "../shared/metrics.js";
import { bearerToken, type TokenVerifier } from "./auth.js";
import { createCors } from "./cors.js";
import { HttpStatusError, codeName, malformedBodyError, methodNotAllowedError, toConnectError, unsupportedMediaTypeError } from "./errors.js";
import { writeError, writeJson, type HttpRequest, type HttpResponse } from "./http-responses.js";
import { parseJson, readBody } from "./rest-transcoder.js";

/**
 * The largest codec request: the UI sends one event's payloads, and the
 * largest is a session's input, the largest accepted request re-encoded as
 * JSON at the worst expansion (what the companions accept), then base64 (4/3).
 */
export const CODEC_MAX_BODY_BYTES = Math.ceil((COMPANION_MAX_BODY_BYTES * 4) / 3);

const OPERATIONS = new Map<string, "decode" | "encode">([
  ["/codec/decode", "decode"],
  ["/codec/encode", "encode"],
]);

/** Proto JSON `bytes`: standard or URL-safe base64, padding optional (proto3 JSON mapping). */
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

/** What the endpoint needs. */
export interface CodecEndpointOptions {
  /** The API's payload codec: what it decodes, Temporal shows decrypted. */
  codec: PayloadCodec;
  /** The Temporal namespace the API's sessions live in; a request naming another in `X-Namespace` is refused. */
  namespace: string;
  /** Browser origins allowed to call it: the Temporal Web UI's. */
  allowedOrigins: readonly string[];
  /** The API's bearer-token check; unset when authentication is off. */
  verifier: TokenVerifier | undefined;
  logger: Logger;
  /** Where `somagent_api_codec_requests_total` is registered. */
  registry: Registry;
}

/**
 * Builds the endpoint's request step: it serves `/codec/decode` and
 * `/codec/encode` (with their CORS preflights) and returns true, or returns
 * false for any other path. Answers: 200 with the converted payloads; 400
 * INVALID_ARGUMENT naming the field of a malformed payload, or the index of
 * one that does not decrypt (unknown key, tampered, forged, truncated); 401 without
 * a valid token when authentication is on; 405 for a method other than POST;
 * 413 past {@link CODEC_MAX_BODY_BYTES}. Payloads the codec did not write
 * (another encoding) are decoded as themselves, as the API's Get shows them.
 */
export function createCodecEndpoint(options: CodecEndpointOptions): (req: HttpRequest, res: HttpResponse, url: URL) => boolean {
  const applyCors = createCors(options.allowedOrigins, ["X-Namespace"]);
  // Refusals stand out: a payload that does not decrypt is tampering or a key missing from PAYLOAD_CODEC_KEYS.
  const requests = new Counter({
    name: "somagent_api_codec_requests_total",
    help: "Requests to the codec endpoint for the Temporal UI, by operation (decode, encode) and canonical code.",
    labelNames: ["operation", "code"] as const,
    registers: [options.registry],
  });

  async function convert(req: HttpRequest, operation: "decode" | "encode"): Promise<JsonValue> {
    if (options.verifier) await options.verifier(bearerToken(req.headers.authorization ?? null));
    const namespace = req.headers["x-namespace"];
    if (typeof namespace === "string" && namespace !== "" && namespace !== options.namespace) {
      throw new ConnectError(`X-Namespace: this codec serves namespace "${options.namespace}", not "${namespace}"`, Code.InvalidArgument);
    }
    const contentType = String(req.headers["content-type"] ?? "");
    if (!/^application\/json\s*(;|$)/i.test(contentType)) throw unsupportedMediaTypeError(contentType);
    const payloads = parsePayloads(parseJson(await readBody(req, CODEC_MAX_BODY_BYTES)));
    const converted = operation === "encode" ? await options.codec.encode(payloads) : await decodeEach(payloads);
    return { payloads: converted.map(payloadJson) };
  }

  /** Decodes one by one so a refusal names the payload. */
  async function decodeEach(payloads: Payload[]): Promise<Payload[]> {
    return Promise.all(
      payloads.map(async (payload, index) => {
        try {
          const [decoded] = await options.codec.decode([payload]);
          return decoded as Payload;
        } catch (error) {
          // Decoding is a pure function of the payload and the keys: whatever it throws (unknown key, a tag that
          // does not verify, bytes that are not a payload) is the payload's fault, so the caller is told which.
          const reason = error instanceof Error ? error.message : String(error);
          options.logger.warn("codec endpoint refused a payload", { field: `payloads[${index}]`, reason });
          throw malformedBodyError(`payloads[${index}]: cannot be decoded: ${reason}`, `payloads[${index}]`);
        }
      }),
    );
  }

  return (req, res, url) => {
    const operation = OPERATIONS.get(url.pathname);
    if (!operation) return false;
    if (applyCors(req, res)) return true;
    if (req.method !== "POST") {
      writeError(res, methodNotAllowedError(req.method ?? "", url.pathname, ["POST"]));
      return true;
    }
    convert(req, operation).then(
      (body) => {
        requests.inc({ operation, code: "OK" });
        writeJson(res, 200, body);
      },
      (thrown: unknown) => {
        const error = toConnectError(thrown instanceof HttpStatusError ? thrown.error : thrown, options.logger);
        requests.inc({ operation, code: codeName(error.code) });
        writeError(res, thrown instanceof HttpStatusError ? thrown : error);
      },
    );
    return true;
  };
}

/** The request's payloads; a malformed one is INVALID_ARGUMENT naming its field (`payloads[2].metadata.encoding`). */
function parsePayloads(body: JsonValue | undefined): Payload[] {
  const list = isObject(body) ? body.payloads : undefined;
  if (!isObject(body) || !Array.isArray(list)) throw malformedBodyError('payloads: the body must be {"payloads": [...]}', "payloads");
  const unknown = Object.keys(body).find((key) => key !== "payloads");
  if (unknown) throw malformedBodyError(`${unknown}: unknown field of Payloads`, unknown);
  return list.map((item, index) => {
    const field = `payloads[${index}]`;
    if (!isObject(item)) throw malformedBodyError(`${field}: must be an object with metadata and data`, field);
    const extra = Object.keys(item).find((key) => key !== "metadata" && key !== "data");
    if (extra) throw malformedBodyError(`${field}.${extra}: unknown field of Payload`, `${field}.${extra}`);
    const metadata = item.metadata ?? {};
    if (!isObject(metadata)) throw malformedBodyError(`${field}.metadata: must be an object of base64 values`, `${field}.metadata`);
    return {
      metadata: Object.fromEntries(Object.entries(metadata).map(([key, value]) => [key, base64Field(value, `${field}.metadata.${key}`)])),
      data: base64Field(item.data ?? "", `${field}.data`),
    };
  });
}

function base64Field(value: JsonValue, field: string): Uint8Array {
  if (typeof value !== "string" || !BASE64.test(value) || value.replace(/=+$/, "").length % 4 === 1) {
    throw malformedBodyError(`${field}: must be a base64 string`, field);
  }
  return Buffer.from(value, "base64");
}

function payloadJson(payload: Payload): JsonValue {
  const metadata = Object.entries(payload.metadata ?? {}).map(([key, value]) => [key, Buffer.from(value ?? new Uint8Array()).toString("base64")]);
  return { metadata: Object.fromEntries(metadata), data: Buffer.from(payload.data ?? new Uint8Array()).toString("base64") };
}

function isObject(value: JsonValue | undefined): value is { [key: string]: JsonValue } {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
