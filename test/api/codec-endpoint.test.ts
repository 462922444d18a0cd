/**
 * The codec endpoint for the Temporal Web UI, over HTTP as the UI calls it,
 * against the real stack: the API with a Temporal dev server of its own, a
 * real session worker (policy engine, identity service, the run's Ray and
 * Kafka) that runs a session to completion, and, for authentication, the
 * identity service's JWKS. The payloads decoded are the ones Temporal holds
 * in that session's history.
 */
import { randomUUID } from "node:crypto";
import type { temporal } from "@temporalio/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { identityServiceSigningKey, signCallerToken } from "../../local/caller-token.js";
import { startIdentityService, startPolicyEngine, temporaryDirectory, type StartedCompanion } from "../companions/start-companions.js";
import { CODEC_MAX_BODY_BYTES } from "../../src/api/codec-endpoint.js";
import { identityServiceAuth, startApiFixture, startFixtureWorker, type FixtureWorker, startExtraServer, type ApiFixture } from "./api-fixture.js";

type PayloadJson = { metadata: Record<string, string>; data: string };
type HistoryPayload = { metadata?: Record<string, Uint8Array> | null; data?: Uint8Array | null };

const UI_ORIGIN = "http://127.0.0.1:8233";
const ISSUER = "somagent-identity-codec-test";
const AUDIENCE = "somagent-orchestrator-api";
const SESSION_ID = `codec-${randomUUID().slice(0, 8)}`;

let keyDir: ReturnType<typeof temporaryDirectory>;
let identityService: StartedCompanion;
let policyEngine: StartedCompanion;
let fixture: ApiFixture;
let workerStack: FixtureWorker | undefined;
/** Every payload of the completed session's history, in history order, as Temporal stores them. */
let historyPayloads: PayloadJson[];

const b64 = (bytes: Uint8Array | string) => Buffer.from(bytes).toString("base64");
const text = (base64: string) => Buffer.from(base64, "base64").toString("utf8");
const toJson = (payload: HistoryPayload): PayloadJson => ({
  metadata: Object.fromEntries(Object.entries(payload.metadata ?? {}).map(([key, value]) => [key, b64(value)])),
  data: b64(payload.data ?? new Uint8Array()),
});

/** POSTs `body` to `/codec/<operation>` of `baseUrl` as the Temporal UI does. */
async function codec(baseUrl: string, operation: "decode" | "encode", body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${baseUrl}/codec/${operation}`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-namespace": "default", origin: UI_ORIGIN, ...headers },
    body: JSON.stringify(body),
  });
  return { response, json: (await response.json()) as { payloads: PayloadJson[]; message?: string; details?: unknown[] } };
}

beforeAll(async () => {
  keyDir = temporaryDirectory("codec-identity-keys");
  identityService = await startIdentityService(keyDir.path, { issuer: ISSUER });
  policyEngine = await startPolicyEngine();
  fixture = await startApiFixture();

  workerStack = await startFixtureWorker(fixture, { policyEngine: new URL(policyEngine.url), identityService: new URL(identityService.url) }, "codec-test");

  const started = await fetch(`${fixture.baseUrl}/v1/sessions/start`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ tenant: "tenant-demo", user: "user-demo", prompt: "kick off a demo", metadata: { session_id: SESSION_ID } }),
  });
  expect(started.status).toBe(200);
  const handle = fixture.connection.client.workflow.getHandle(`session-${SESSION_ID}`);
  await handle.result();
  historyPayloads = collectPayloads((await handle.fetchHistory()).events?.map(withoutCoreMarkerData)).map(toJson);
}, 240_000);

afterAll(async () => {
  await workerStack?.close();
  await fixture?.close();
  await identityService?.close();
  await policyEngine?.close();
  keyDir?.remove();
}, 60_000);

/**
 * A history event without what the SDK's core writes into markers itself, never
 * through a payload codec: a patch marker's details (the patch id) and a local
 * activity marker's bookkeeping (`data`: sequence, attempt, times). A local
 * activity's `result` stays: it went through the codec.
 */
function withoutCoreMarkerData(event: temporal.api.history.v1.IHistoryEvent): unknown {
  const marker = event.markerRecordedEventAttributes;
  if (!marker) return event;
  if (marker.markerName === "core_local_activity") return { result: marker.details?.result };
  return undefined;
}

/** Every `{metadata, data}` object in a `payloads` list of the history's events (input, memo, activity inputs and results, result). */
function collectPayloads(value: unknown): HistoryPayload[] {
  if (typeof value !== "object" || value === null || ArrayBuffer.isView(value)) return [];
  if (Array.isArray(value)) return value.flatMap(collectPayloads);
  return Object.entries(value).flatMap(([key, item]) => (key === "payloads" && Array.isArray(item) ? (item as HistoryPayload[]) : collectPayloads(item)));
}

describe("the codec endpoint (Temporal's remote codec protocol)", () => {
  it("decodes every payload of a real session's history: its input, activities and result", async () => {
    expect(historyPayloads.length).toBeGreaterThanOrEqual(9);
    for (const payload of historyPayloads) expect(text(payload.metadata.encoding ?? "")).toBe("binary/encrypted");

    const { response, json } = await codec(fixture.baseUrl, "decode", { payloads: historyPayloads });
    expect(response.status).toBe(200);
    expect(response.headers.get("access-control-allow-origin")).toBe(UI_ORIGIN);
    expect(json.payloads).toHaveLength(historyPayloads.length);
    for (const payload of json.payloads) expect(text(payload.metadata.encoding ?? "")).toBe("json/plain");
    const decoded = json.payloads.map((payload) => text(payload.data));
    const input = JSON.parse(decoded[0] ?? "null") as { sessionId: string; prompt: string; tenant: string };
    expect(input).toMatchObject({ sessionId: SESSION_ID, prompt: "kick off a demo", tenant: "tenant-demo" });
    const result = JSON.parse(decoded[decoded.length - 1] ?? "null") as Record<string, unknown>;
    expect(Object.keys(result)).toEqual(expect.arrayContaining(["policy", "token", "completion", "auditEventId"]));
  });

  it("answers the UI's preflight from its origin, allowing X-Namespace and Authorization", async () => {
    const preflight = await fetch(`${fixture.baseUrl}/codec/decode`, {
      method: "OPTIONS",
      headers: { origin: UI_ORIGIN, "access-control-request-method": "POST", "access-control-request-headers": "content-type,x-namespace" },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe(UI_ORIGIN);
    expect(preflight.headers.get("access-control-allow-headers")?.toLowerCase()).toEqual(expect.stringContaining("x-namespace"));
    expect(preflight.headers.get("access-control-allow-headers")?.toLowerCase()).toEqual(expect.stringContaining("authorization"));
    const otherOrigin = await fetch(`${fixture.baseUrl}/codec/decode`, {
      method: "OPTIONS",
      headers: { origin: "http://evil.example", "access-control-request-method": "POST" },
    });
    expect(otherOrigin.status).toBe(403);
  });

  it("round-trips encode then decode, encrypting with the API's key", async () => {
    const plain = { metadata: { encoding: b64("json/plain") }, data: b64(JSON.stringify({ hello: "codec" })) };
    const encoded = await codec(fixture.baseUrl, "encode", { payloads: [plain] });
    expect(encoded.response.status).toBe(200);
    const [cipher] = encoded.json.payloads;
    expect(text(cipher?.metadata.encoding ?? "")).toBe("binary/encrypted");
    expect(text(cipher?.data ?? "")).not.toContain("codec");
    const decoded = await codec(fixture.baseUrl, "decode", { payloads: [cipher] });
    expect(decoded.json.payloads).toEqual([plain]);
  });

  it("refuses a forged or tampered payload, naming it, and a malformed one, naming its field", async () => {
    const real = historyPayloads[0] as PayloadJson;
    const tamperedData = Buffer.from(real.data, "base64");
    tamperedData[20] = (tamperedData[20] ?? 0) ^ 1;
    const forged = { metadata: { ...real.metadata }, data: b64(JSON.stringify({ prompt: "forged" })) };
    const unknownKey = { metadata: { ...real.metadata, "encryption-key-id": b64("stolen") }, data: real.data };
    for (const [bad, reason] of [
      [{ ...real, data: b64(tamperedData) }, "Unsupported state or unable to authenticate data"],
      [forged, ""],
      [unknownKey, 'unknown key id "stolen"'],
    ] as const) {
      const { response, json } = await codec(fixture.baseUrl, "decode", { payloads: [real, bad] });
      expect(response.status).toBe(400);
      expect(json.message).toContain("payloads[1]: cannot be decoded");
      expect(json.message).toContain(reason);
      expect(JSON.stringify(json.details)).toContain("payloads[1]");
    }
    const notBase64 = await codec(fixture.baseUrl, "decode", { payloads: [{ metadata: { encoding: b64("json/plain") }, data: "not base64!" }] });
    expect(notBase64.response.status).toBe(400);
    expect(notBase64.json.message).toBe("payloads[0].data: must be a base64 string");
    const notPayloads = await codec(fixture.baseUrl, "decode", { items: [] });
    expect(notPayloads.json.message).toContain('the body must be {"payloads": [...]}');
    const otherNamespace = await codec(fixture.baseUrl, "decode", { payloads: [] }, { "x-namespace": "billing" });
    expect(otherNamespace.response.status).toBe(400);
    expect(otherNamespace.json.message).toBe('X-Namespace: this codec serves namespace "default", not "billing"');
  });

  it("passes a payload it did not encrypt through unchanged, as the API's Get shows it", async () => {
    const plain = { metadata: { encoding: b64("json/plain") }, data: b64('"plaintext"') };
    const { json } = await codec(fixture.baseUrl, "decode", { payloads: [plain] });
    expect(json.payloads).toEqual([plain]);
  });

  it("refuses a body past its limit (413) and one that is not JSON (415)", async () => {
    const tooLarge = await fetch(`${fixture.baseUrl}/codec/decode`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ payloads: [{ data: "A".repeat(CODEC_MAX_BODY_BYTES) }] }),
    });
    expect(tooLarge.status).toBe(413);
    expect(((await tooLarge.json()) as { status: string }).status).toBe("RESOURCE_EXHAUSTED");
    const notJson = await fetch(`${fixture.baseUrl}/codec/decode`, { method: "POST", headers: { "content-type": "text/plain" }, body: "{}" });
    expect(notJson.status).toBe(415);
  });

  it("counts its requests by operation and code", async () => {
    const metrics = await (await fetch(`${fixture.baseUrl}/metrics`)).text();
    const count = (labels: string) => Number(new RegExp(`^somagent_api_codec_requests_total\\{${labels}\\} (\\d+)$`, "m").exec(metrics)?.[1] ?? 0);
    expect(count('operation="encode",code="OK"')).toBeGreaterThanOrEqual(1);
    expect(count('operation="decode",code="OK"')).toBeGreaterThanOrEqual(3);
    expect(count('operation="decode",code="INVALID_ARGUMENT"')).toBeGreaterThanOrEqual(6);
    expect(count('operation="decode",code="RESOURCE_EXHAUSTED"')).toBe(1);
  });

  it("serves only POST", async () => {
    const response = await fetch(`${fixture.baseUrl}/codec/decode`);
    expect(response.status).toBe(405);
    expect(response.headers.get("allow")).toBe("POST");
  });

  it("with authentication on, refuses a caller without a valid bearer token and serves one with it", async () => {
    const extra = await startExtraServer(fixture, {
      auth: identityServiceAuth(identityService.url, ISSUER, AUDIENCE),
      codecEndpoint: { codec: fixture.connection.codec, namespace: "default", allowedOrigins: [UI_ORIGIN] },
    });
    try {
      const body = { payloads: historyPayloads.slice(0, 1) };
      const anonymous = await codec(extra.baseUrl, "decode", body);
      expect(anonymous.response.status).toBe(401);
      expect(anonymous.response.headers.get("www-authenticate")).toBe('Bearer realm="somagent-orchestrator"');
      expect(anonymous.json.payloads).toBeUndefined();
      const bad = await codec(extra.baseUrl, "decode", body, { authorization: "Bearer not.a-jwt" });
      expect(bad.response.status).toBe(401);

      const token = await signCallerToken(identityServiceSigningKey(keyDir.path), { tenant: "tenant-demo", user: "user-demo", issuer: ISSUER, audience: AUDIENCE });
      const allowed = await codec(extra.baseUrl, "decode", body, { authorization: `Bearer ${token}` });
      expect(allowed.response.status).toBe(200);
      expect(JSON.parse(text(allowed.json.payloads[0]?.data ?? ""))).toMatchObject({ sessionId: SESSION_ID });
    } finally {
      await extra.server.shutdown();
    }
  });
});
