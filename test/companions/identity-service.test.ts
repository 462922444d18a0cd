/**
 * The identity service's HTTP contract through plain fetch against a real
 * server on a loopback port, tokens checked with jose against its JWKS, and
 * TOTP against RFC 6238's test vectors.
 */
import { COMPANION_MAX_BODY_BYTES } from "../../src/config.js";
import { statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { calculateJwkThumbprint, createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from "jose";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../src/shared/logger.js";
import { createMetricsRegistry } from "../../src/shared/metrics.js";
import { createIdentityServiceServer } from "../../src/companions/identity-service/server.js";
import { SIGNING_KEY_FILE, loadOrCreateSigningKey } from "../../src/companions/identity-service/signing-key.js";
import { base32Decode, hotp, totp, verifyTotp } from "../../src/companions/identity-service/totp.js";
import { getJson, postJson, startIdentityService, temporaryDirectory, type StartedCompanion } from "./start-companions.js";

/** The MFA demo user's secret, as documented in default-users.json. */
const MFA_SECRET = "5BOMBGKBSZ6CDTYGQLTYYRSR5JUB64MR";
const ISSUER = "somagent-identity-test";

let keyDir: ReturnType<typeof temporaryDirectory>;
let service: StartedCompanion;
const cleanups: (() => unknown)[] = [];

function issue(server: StartedCompanion, body: Record<string, unknown>) {
  return postJson(new URL("/v1/tokens/issue", server.url), body);
}

const demoRequest = { user_id: "user-demo", tenant_id: "tenant-demo", capabilities: ["session:start"] };

async function jwks(server: StartedCompanion): Promise<JSONWebKeySet> {
  return (await getJson(new URL("/.well-known/jwks.json", server.url))).body as JSONWebKeySet;
}

beforeAll(async () => {
  keyDir = temporaryDirectory("identity-keys");
  service = await startIdentityService(keyDir.path);
});

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

afterAll(async () => {
  await service?.close();
  keyDir?.remove();
});

describe("TOTP", () => {
  const rfcSecret = Buffer.from("12345678901234567890", "ascii");

  it.each([
    [59, "94287082"],
    [1111111109, "07081804"],
    [1111111111, "14050471"],
    [1234567890, "89005924"],
    [2000000000, "69279037"],
    [20000000000, "65353130"],
  ])("matches RFC 6238 appendix B (SHA-1, 8 digits) at T=%i", (time, expected) => {
    expect(totp(rfcSecret, time, { digits: 8 })).toBe(expected);
  });

  it("matches RFC 4226 appendix D's HOTP values", () => {
    expect([0, 1, 2, 9].map((counter) => hotp(rfcSecret, counter))).toEqual(["755224", "287082", "359152", "520489"]);
  });

  it("decodes RFC 4648 base32, ignoring case, spaces and padding", () => {
    expect(base32Decode("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").toString("ascii")).toBe("12345678901234567890");
    expect(base32Decode("mzxw6 ytboi======").toString("ascii")).toBe("foobar");
    expect(() => base32Decode("MZXW1")).toThrow(/not base32/);
  });

  it("accepts the codes of one step either side of now and no further, returning the matched step", () => {
    const secret = base32Decode(MFA_SECRET);
    const now = 1_700_000_015;
    const step = Math.floor(now / 30);
    expect(verifyTotp(secret, totp(secret, now), now)).toBe(step);
    expect(verifyTotp(secret, totp(secret, now - 30), now)).toBe(step - 1);
    expect(verifyTotp(secret, totp(secret, now + 30), now)).toBe(step + 1);
    expect(verifyTotp(secret, totp(secret, now - 60), now)).toBeUndefined();
    expect(verifyTotp(secret, totp(secret, now + 60), now)).toBeUndefined();
    expect(verifyTotp(secret, "12345", now)).toBeUndefined();
  });
});

describe("identity service: POST /v1/tokens/issue", () => {
  it("issues an EdDSA JWT for the smoke test's user that verifies against the published JWKS", async () => {
    const { status, headers, body } = await issue(service, demoRequest);
    expect(status).toBe(200);
    expect(headers.get("cache-control")).toBe("no-store");
    expect(body).toEqual({ token: expect.any(String), expires_in: 900, token_type: "Bearer" });

    const keySet = await jwks(service);
    expect(keySet.keys).toHaveLength(1);
    const [key] = keySet.keys;
    expect(key).toMatchObject({ kty: "OKP", crv: "Ed25519", alg: "EdDSA", use: "sig" });
    expect(key).not.toHaveProperty("d");
    expect(key?.kid).toBe(await calculateJwkThumbprint(key!));

    const { payload, protectedHeader } = await jwtVerify(body.token, createLocalJWKSet(keySet), { issuer: ISSUER, algorithms: ["EdDSA"] });
    expect(protectedHeader).toEqual({ alg: "EdDSA", kid: key?.kid, typ: "JWT" });
    expect(payload).toEqual({
      iss: ISSUER,
      sub: "user-demo",
      tenant_id: "tenant-demo",
      capabilities: ["session:start"],
      iat: expect.any(Number),
      exp: expect.any(Number),
      jti: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
    expect(payload.exp! - payload.iat!).toBe(900);
    expect(Math.abs(payload.iat! - Date.now() / 1000)).toBeLessThan(5);
  });

  it("gives every token its own jti", async () => {
    const [a, b] = await Promise.all([issue(service, demoRequest), issue(service, demoRequest)]);
    const jti = (token: string) => JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()).jti;
    expect(jti(a.body.token)).not.toBe(jti(b.body.token));
  });

  it.each([
    ["an unknown user", { ...demoRequest, user_id: "user-nobody" }, 404, "user_not_found", /user_id "user-nobody"/],
    ["an inactive user", { ...demoRequest, user_id: "user-suspended" }, 403, "user_inactive", /user_id "user-suspended" is inactive/],
    ["a tenant the user is not in", { ...demoRequest, tenant_id: "tenant-other" }, 403, "tenant_not_allowed", /tenant_id "tenant-other"/],
    [
      "a capability the user lacks",
      { ...demoRequest, user_id: "user-readonly" },
      403,
      "capability_not_granted",
      /user "user-readonly" lacks the capability "session:start"/,
    ],
    ["an MFA user without mfa_code", { ...demoRequest, user_id: "user-mfa" }, 400, "mfa_required", /mfa_code is required/],
  ])("refuses %s", async (_case, body, status, error, message) => {
    const answer = await issue(service, body);
    expect(answer.status).toBe(status);
    expect(answer.body.error).toBe(error);
    expect(answer.body.message).toMatch(message);
  });

  it("issues to an MFA user with the current TOTP code once, refusing a wrong code and a replay", async () => {
    const secret = base32Decode(MFA_SECRET);
    const now = Date.now() / 1000;
    const wrong = await issue(service, { ...demoRequest, user_id: "user-mfa", mfa_code: totp(secret, now + 300) });
    expect(wrong.status).toBe(400);
    expect(wrong.body).toEqual({ error: "mfa_invalid", message: "mfa_code is wrong, expired or already used" });

    const code = totp(secret, now);
    const accepted = await issue(service, { ...demoRequest, user_id: "user-mfa", mfa_code: code });
    expect(accepted.status).toBe(200);
    const replay = await issue(service, { ...demoRequest, user_id: "user-mfa", mfa_code: code });
    expect(replay.status).toBe(400);
    expect(replay.body.message).toMatch(/mfa_code/);
  });

  it.each([
    ["user_id", { tenant_id: "tenant-demo", capabilities: [] }, "user_id is required"],
    ["tenant_id", { user_id: "user-demo", tenant_id: 7, capabilities: [] }, "tenant_id must be a string"],
    ["capabilities", { user_id: "user-demo", tenant_id: "tenant-demo", capabilities: "session:start" }, "capabilities must be an array of strings"],
    ["capabilities[1]", { ...demoRequest, capabilities: ["session:start", 3] }, "capabilities[1] must be a string"],
    ["mfa_code", { ...demoRequest, mfa_code: 123456 }, "mfa_code must be a string"],
  ])("answers 400 naming %s when it is missing or mistyped", async (_field, body, message) => {
    const answer = await issue(service, body);
    expect(answer.status).toBe(400);
    expect(answer.body).toEqual({ error: "invalid_request", message });
  });

  it("answers 400 for invalid JSON, 415 for another content type and 413 past its limit (COMPANION_MAX_BODY_BYTES)", async () => {
    const url = new URL("/v1/tokens/issue", service.url);
    expect((await postJson(url, "not json")).status).toBe(400);
    expect((await postJson(url, JSON.stringify(demoRequest), { contentType: "application/x-www-form-urlencoded" })).status).toBe(415);
    const big = await issue(service, { ...demoRequest, padding: "x".repeat(COMPANION_MAX_BODY_BYTES) });
    expect(big.status).toBe(413);
    expect(big.body.error).toBe("payload_too_large");
  });

  it("answers 404 for an unknown path and 405 for a GET on the issue endpoint", async () => {
    expect((await getJson(new URL("/v1/tokens/revoke", service.url))).status).toBe(404);
    const wrong = await getJson(new URL("/v1/tokens/issue", service.url));
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get("allow")).toBe("POST");
  });
});

describe("identity service: POST /v1/tokens/verify", () => {
  it("answers valid with the claims for its own token", async () => {
    const { body: issued } = await issue(service, demoRequest);
    const { status, body } = await postJson(new URL("/v1/tokens/verify", service.url), { token: issued.token });
    expect(status).toBe(200);
    expect(body).toMatchObject({ valid: true, claims: { sub: "user-demo", tenant_id: "tenant-demo", capabilities: ["session:start"], iss: ISSUER } });
  });

  it("answers invalid with a reason for a tampered token, a foreign token and garbage", async () => {
    const { body: issued } = await issue(service, demoRequest);
    const [header, payload, signature] = issued.token.split(".");
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString());
    const forgedPayload = Buffer.from(JSON.stringify({ ...claims, capabilities: ["admin"] })).toString("base64url");

    const otherDir = temporaryDirectory("identity-keys-other");
    cleanups.push(otherDir.remove);
    const other = await startIdentityService(otherDir.path);
    cleanups.push(() => other.close());
    const { body: foreign } = await issue(other, demoRequest);

    for (const token of [`${header}.${forgedPayload}.${signature}`, foreign.token, "not-a-jwt"]) {
      const { status, body } = await postJson(new URL("/v1/tokens/verify", service.url), { token });
      expect(status).toBe(200);
      expect(body).toEqual({ valid: false, reason: expect.any(String) });
    }
  });

  it("answers 400 naming token when it is missing", async () => {
    const { status, body } = await postJson(new URL("/v1/tokens/verify", service.url), {});
    expect(status).toBe(400);
    expect(body.message).toBe("token is required");
  });
});

describe("identity service: signing key", () => {
  it("persists the key as a 0600 JWK and reuses it after a restart in the same key directory", async () => {
    const dir = temporaryDirectory("identity-keys-restart");
    cleanups.push(dir.remove);
    const first = await startIdentityService(dir.path);
    const before = await jwks(first);
    const { body: issued } = await issue(first, demoRequest);
    await first.close();

    expect(statSync(join(dir.path, SIGNING_KEY_FILE)).mode & 0o777).toBe(0o600);
    expect(statSync(dir.path).mode & 0o777).toBe(0o700);

    const second = await startIdentityService(dir.path);
    cleanups.push(() => second.close());
    expect(await jwks(second)).toEqual(before);
    await expect(jwtVerify(issued.token, createLocalJWKSet(await jwks(second)), { issuer: ISSUER })).resolves.toBeDefined();
    expect((await postJson(new URL("/v1/tokens/verify", second.url), { token: issued.token })).body.valid).toBe(true);
    expect(decodeProtectedHeader(issued.token).kid).toBe(before.keys[0]?.kid);
  });

  it("creates a different key in a different key directory", async () => {
    const dir = temporaryDirectory("identity-keys-new");
    cleanups.push(dir.remove);
    expect(loadOrCreateSigningKey(dir.path).kid).not.toBe((await jwks(service)).keys[0]?.kid);
  });

  it("refuses a key file that is not an Ed25519 private JWK", () => {
    const dir = temporaryDirectory("identity-keys-bad");
    cleanups.push(dir.remove);
    writeFileSync(join(dir.path, SIGNING_KEY_FILE), JSON.stringify({ kty: "RSA" }));
    expect(() => loadOrCreateSigningKey(dir.path)).toThrow(/is not an Ed25519 private JWK/);
  });

  it("refuses to start on an invalid users file, naming the file and the field", () => {
    const dir = temporaryDirectory("identity-users");
    cleanups.push(dir.remove);
    const usersFile = join(dir.path, "users.json");
    writeFileSync(usersFile, JSON.stringify({ users: [{ user_id: "u", tenants: ["t"], capabilities: [], active: "yes" }] }));
    expect(() =>
      createIdentityServiceServer({
        signingKey: loadOrCreateSigningKey(dir.path),
        usersFile,
        issuer: ISSUER,
        tokenTtlSeconds: 60,
        registry: createMetricsRegistry({ processMetrics: false }),
        logger: createLogger("test", () => undefined),
      }),
    ).toThrow(`${usersFile}: users[0].active must be true or false`);
  });
});

describe("identity service: health and metrics", () => {
  it("answers GET /health with status ok and counts requests by route and status", async () => {
    expect((await getJson(new URL("/health", service.url))).body).toEqual({ status: "ok" });
    await issue(service, { ...demoRequest, user_id: "user-nobody" });
    const text = await (await fetch(new URL("/metrics", service.url))).text();
    expect(text).toMatch(/somagent_identity_service_http_requests_total\{route="\/v1\/tokens\/issue",method="POST",status="404"\} \d+/);
    expect(text).toMatch(/somagent_identity_service_http_requests_total\{route="\/health",method="GET",status="200"\} \d+/);
  });
});
