/**
 * The identity service's HTTP contract through plain fetch against a real
 * server on a loopback port, tokens checked with jose against its JWKS, and
 * TOTP against RFC 6238's test vectors.
 */
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { COMPANION_MAX_BODY_BYTES } from "../../src/config.js";
import { join } from "node:path";
import { calculateJwkThumbprint, createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from "jose";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../src/shared/logger.js";
import { createMetricsRegistry } from "../../src/shared/metrics.js";
import { createIdentityServiceServer } from "../../src/companions/identity-service/server.js";
import { SIGNING_KEY_FILE, loadOrCreateSigningKey } from "../../src/companions/identity-service/signing-key.js";
import { base32Decode, hotp, totp, verifyTotp } from "../../src/companions/identity-service/totp.js";
import { USED_CODES_FILE } from "../../src/companions/identity-service/used-codes.js";
import { basicAuthorization } from "../../src/shared/http/credentials.js";
import {
  CLIENT_AUTHORIZATION,
  TEST_CLIENT,
  getJson,
  postJson,
  startIdentityService,
  temporaryDirectory,
  type StartedCompanion,
} from "./start-companions.js";

/** The MFA demo user's secret, as documented in default-users.json. */
const MFA_SECRET = "5BOMBGKBSZ6CDTYGQLTYYRSR5JUB64MR";
const ISSUER = "somagent-identity-test";

let keyDir: ReturnType<typeof temporaryDirectory>;
let service: StartedCompanion;
const cleanups: (() => unknown)[] = [];

/** Asks `server` for a token as the configured client (or with the given `Authorization` headers). */
function issue(server: StartedCompanion, body: Record<string, unknown>, headers: Record<string, string> = CLIENT_AUTHORIZATION) {
  return postJson(new URL("/v1/tokens/issue", server.url), body, { headers });
}

function verify(server: StartedCompanion, body: Record<string, unknown>, headers: Record<string, string> = CLIENT_AUTHORIZATION) {
  return postJson(new URL("/v1/tokens/verify", server.url), body, { headers });
}

/** The one answer to every refusal. */
const ACCESS_DENIED = { error: "access_denied", message: "the token request was refused (the identity service's log has the reason)" };

/** The MFA demo user's code at `timeSeconds` (default now). */
function mfaCode(timeSeconds = Date.now() / 1000): string {
  return totp(base32Decode(MFA_SECRET), timeSeconds);
}

/** A raw HTTP/1.1 request with a chosen Host header (fetch does not let a caller set Host). */
function getWithHost(url: URL, host: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(url, { headers: { host } }, (response) => {
      let text = "";
      response.on("data", (chunk: Buffer) => (text += chunk.toString()));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body: text === "" ? undefined : JSON.parse(text) }));
    });
    request.on("error", reject);
    request.end();
  });
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
    ["an unknown user", { ...demoRequest, user_id: "user-nobody" }, CLIENT_AUTHORIZATION],
    ["an inactive user", { ...demoRequest, user_id: "user-suspended" }, CLIENT_AUTHORIZATION],
    ["a tenant the user is not in", { ...demoRequest, tenant_id: "tenant-other" }, CLIENT_AUTHORIZATION],
    ["a capability the user lacks", { ...demoRequest, user_id: "user-readonly" }, CLIENT_AUTHORIZATION],
    ["an MFA user without mfa_code", { ...demoRequest, user_id: "user-mfa" }, CLIENT_AUTHORIZATION],
    ["an MFA user with a wrong code", { ...demoRequest, user_id: "user-mfa", mfa_code: "000000" }, CLIENT_AUTHORIZATION],
    ["a caller without credentials", demoRequest, {}],
    ["a caller with the wrong secret", demoRequest, { authorization: basicAuthorization(TEST_CLIENT.id, `${TEST_CLIENT.secret}x`) }],
    ["a caller with another client id", demoRequest, { authorization: basicAuthorization("someone-else", TEST_CLIENT.secret) }],
    ["a caller sending the secret as a bearer token", demoRequest, { authorization: `Bearer ${TEST_CLIENT.secret}` }],
  ])("refuses %s with the one answer every refusal gets", async (_case, body, headers) => {
    const answer = await issue(service, body, headers);
    expect(answer.status).toBe(403);
    expect(answer.body).toEqual(ACCESS_DENIED);
    expect(answer.headers.get("retry-after")).toBeNull();
  });

  it("answers an unknown user, a known user without MFA's code and a wrong caller credential identically, byte for byte", async () => {
    const answers = await Promise.all(
      [
        issue(service, { ...demoRequest, user_id: "user-never-heard-of" }),
        issue(service, { ...demoRequest, user_id: "user-mfa" }),
        issue(service, { ...demoRequest, user_id: "user-never-heard-of" }, { authorization: basicAuthorization(TEST_CLIENT.id, "wrong".repeat(8)) }),
      ].map(async (answer) => {
        const { status, headers, body } = await answer;
        return { status, contentType: headers.get("content-type"), body: JSON.stringify(body) };
      }),
    );
    expect(answers[1]).toEqual(answers[0]);
    expect(answers[2]).toEqual(answers[0]);
  });

  it("logs the reason it does not answer, without the code or the caller's secret", async () => {
    await issue(service, { ...demoRequest, user_id: "user-logged", mfa_code: "123456" });
    await issue(service, demoRequest, { authorization: basicAuthorization(TEST_CLIENT.id, "not-the-secret".repeat(3)) });
    const lines = service.logs.map((line) => JSON.parse(line));
    expect(lines).toContainEqual(expect.objectContaining({ message: "token request refused", user_id: "user-logged", reason: "unknown user" }));
    expect(lines).toContainEqual(expect.objectContaining({ message: "caller refused", reason: "wrong client id or secret" }));
    expect(service.logs.join("\n")).not.toMatch(/123456|not-the-secret/);
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
    expect((await postJson(url, "not json", { headers: CLIENT_AUTHORIZATION })).status).toBe(400);
    expect((await postJson(url, JSON.stringify(demoRequest), { contentType: "application/x-www-form-urlencoded", headers: CLIENT_AUTHORIZATION })).status).toBe(415);
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
    const { status, body } = await verify(service, { token: issued.token });
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
      const { status, body } = await verify(service, { token });
      expect(status).toBe(200);
      expect(body).toEqual({ valid: false, reason: expect.any(String) });
    }
  });

  it("answers 400 naming token when it is missing", async () => {
    const { status, body } = await verify(service, {});
    expect(status).toBe(400);
    expect(body.message).toBe("token is required");
  });

  it("refuses a caller without the client's credentials with the same answer as the issue endpoint", async () => {
    const { body: issued } = await issue(service, demoRequest);
    const answer = await verify(service, { token: issued.token }, {});
    expect(answer.status).toBe(403);
    expect(answer.body).toEqual(ACCESS_DENIED);
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
    expect((await verify(second, { token: issued.token })).body.valid).toBe(true);
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
    writeFileSync(join(dir.path, SIGNING_KEY_FILE), JSON.stringify({ kty: "RSA" }), { mode: 0o600 });
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
        stateDir: dir.path,
        usersFile,
        issuer: ISSUER,
        tokenTtlSeconds: 60,
        client: TEST_CLIENT,
        maxFailedAttempts: 5,
        lockoutSeconds: 60,
        allowedHosts: ["localhost"],
        registry: createMetricsRegistry({ processMetrics: false }),
        logger: createLogger("test", () => undefined),
      }),
    ).toThrow(`${usersFile}: users[0].active must be true or false`);
  });
});

describe("identity service: health and metrics", () => {
  it("answers GET /health with status ok and counts requests by route and status", async () => {
    expect((await getJson(new URL("/health", service.url))).body).toEqual({ status: "ok" });
    await issue(service, { ...demoRequest, user_id: "user-metrics" });
    const text = await (await fetch(new URL("/metrics", service.url))).text();
    expect(text).toMatch(/somagent_identity_service_http_requests_total\{route="\/v1\/tokens\/issue",method="POST",status="403"\} \d+/);
    expect(text).toMatch(/somagent_identity_service_http_requests_total\{route="\/health",method="GET",status="200"\} \d+/);
  });
});

describe("identity service: TOTP attempts (RFC 4226 §7.3)", () => {
  it("locks a user out after N refusals in a row, refusing even the right code, and accepts it once the lockout has passed", async () => {
    const dir = temporaryDirectory("identity-lockout");
    cleanups.push(dir.remove);
    const server = await startIdentityService(dir.path, { maxFailedAttempts: 3, lockoutSeconds: 2 });
    cleanups.push(() => server.close());
    const mfa = { ...demoRequest, user_id: "user-mfa" };

    for (let attempt = 0; attempt < 3; attempt++) {
      expect((await issue(server, { ...mfa, mfa_code: "000000" })).body).toEqual(ACCESS_DENIED);
    }
    const locked = await issue(server, { ...mfa, mfa_code: mfaCode() });
    expect(locked.status).toBe(403);
    expect(locked.body).toEqual({ error: "locked_out", message: expect.stringMatching(/^too many refused token requests for this user_id: locked out, try again in [12] s$/) });
    expect(Number(locked.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    // Other users are not affected.
    expect((await issue(server, demoRequest)).status).toBe(200);

    await new Promise((resolve) => setTimeout(resolve, 2_100));
    const accepted = await issue(server, { ...mfa, mfa_code: mfaCode() });
    expect(accepted.status).toBe(200);
  });

  it("locks out an unknown user id the same way, so a lockout says nothing about who exists", async () => {
    const dir = temporaryDirectory("identity-lockout-unknown");
    cleanups.push(dir.remove);
    const server = await startIdentityService(dir.path, { maxFailedAttempts: 2, lockoutSeconds: 60 });
    cleanups.push(() => server.close());
    const answers = [];
    for (const userId of ["user-mfa", "user-nobody"]) {
      for (let attempt = 0; attempt < 2; attempt++) await issue(server, { ...demoRequest, user_id: userId, mfa_code: "000000" });
      const { status, body } = await issue(server, { ...demoRequest, user_id: userId, mfa_code: "000000" });
      answers.push({ status, body });
    }
    expect(answers[0]).toEqual({ status: 403, body: { error: "locked_out", message: expect.stringContaining("locked out") } });
    expect(answers[1]).toEqual(answers[0]);
  });

  it("doubles each further lockout", async () => {
    const dir = temporaryDirectory("identity-lockout-double");
    cleanups.push(dir.remove);
    const server = await startIdentityService(dir.path, { maxFailedAttempts: 1, lockoutSeconds: 1 });
    cleanups.push(() => server.close());
    const wrong = { ...demoRequest, user_id: "user-mfa", mfa_code: "000000" };
    expect((await issue(server, wrong)).body).toEqual(ACCESS_DENIED);
    expect((await issue(server, wrong)).headers.get("retry-after")).toBe("1");
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect((await issue(server, wrong)).body).toEqual(ACCESS_DENIED);
    expect((await issue(server, wrong)).headers.get("retry-after")).toBe("2");
  });
});

describe("identity service: spent codes", () => {
  it("keeps spent codes across a restart, in a 0600 file beside the key", async () => {
    const dir = temporaryDirectory("identity-used-codes");
    cleanups.push(dir.remove);
    const code = mfaCode();
    const first = await startIdentityService(dir.path);
    expect((await issue(first, { ...demoRequest, user_id: "user-mfa", mfa_code: code })).status).toBe(200);
    await first.close();
    expect(statSync(join(dir.path, USED_CODES_FILE)).mode & 0o777).toBe(0o600);

    const second = await startIdentityService(dir.path);
    cleanups.push(() => second.close());
    const replay = await issue(second, { ...demoRequest, user_id: "user-mfa", mfa_code: code });
    expect(replay.status).toBe(403);
    expect(replay.body).toEqual(ACCESS_DENIED);
  });

  it("answers a retry of the same session with the same code again, and refuses that code to any other session", async () => {
    const dir = temporaryDirectory("identity-session-retry");
    cleanups.push(dir.remove);
    const server = await startIdentityService(dir.path);
    cleanups.push(() => server.close());
    const code = mfaCode();
    const request = { ...demoRequest, user_id: "user-mfa", mfa_code: code, session_id: "session-a/run-1" };
    const first = await issue(server, request);
    expect(first.status).toBe(200);
    const retry = await issue(server, request);
    expect(retry.status).toBe(200);
    expect(retry.body.token).not.toBe(first.body.token);

    expect((await issue(server, { ...request, session_id: "session-b/run-1" })).body).toEqual(ACCESS_DENIED);
    expect((await issue(server, { ...demoRequest, user_id: "user-mfa", mfa_code: code })).body).toEqual(ACCESS_DENIED);
    // The retry is honoured after a restart too: the session is kept with the code.
    await server.close();
    const restarted = await startIdentityService(dir.path);
    cleanups.push(() => restarted.close());
    expect((await issue(restarted, request)).status).toBe(200);
  });

  it("answers the spending session's retry after its code has left the ±1 step window, for 10 minutes", async () => {
    const dir = temporaryDirectory("identity-session-retry-late");
    cleanups.push(dir.remove);
    const secret = base32Decode(MFA_SECRET);
    const now = Math.floor(Date.now() / 1000 / 30);
    // The state a service leaves when session-late spent a code 5 minutes ago, and session-old one 11 minutes ago.
    writeFileSync(join(dir.path, USED_CODES_FILE), JSON.stringify({ users: { "user-mfa": { step: now - 10, session: "session-late/run-1" } } }), { mode: 0o600 });
    const server = await startIdentityService(dir.path);
    cleanups.push(() => server.close());
    const late = { ...demoRequest, user_id: "user-mfa", mfa_code: hotp(secret, now - 10), session_id: "session-late/run-1" };
    expect((await issue(server, late)).status).toBe(200);
    expect((await issue(server, { ...late, session_id: "session-other/run-1" })).body).toEqual(ACCESS_DENIED);
    await server.close();

    writeFileSync(join(dir.path, USED_CODES_FILE), JSON.stringify({ users: { "user-mfa": { step: now - 22, session: "session-old/run-1" } } }), { mode: 0o600 });
    const again = await startIdentityService(dir.path);
    cleanups.push(() => again.close());
    expect((await issue(again, { ...late, mfa_code: hotp(secret, now - 22), session_id: "session-old/run-1" })).body).toEqual(ACCESS_DENIED);
  });

  it("refuses to start on a spent-codes file it cannot read, rather than forget the codes", async () => {
    const dir = temporaryDirectory("identity-used-codes-bad");
    cleanups.push(dir.remove);
    writeFileSync(join(dir.path, USED_CODES_FILE), "{not json", { mode: 0o600 });
    await expect(startIdentityService(dir.path)).rejects.toThrow(/is not a used-codes file/);
  });
});

describe("identity service: state directory permissions", () => {
  it("refuses a key directory that other users may enter, saying how to fix it", () => {
    const parent = temporaryDirectory("identity-perms");
    cleanups.push(parent.remove);
    const dir = join(parent.path, "keys");
    mkdirSync(dir, { mode: 0o755 });
    chmodSync(dir, 0o755);
    expect(() => loadOrCreateSigningKey(dir)).toThrow(`directory ${dir} has mode 0755, open to other users: it must be 0700 (chmod 700 ${dir}`);
  });

  it("refuses a key file that other users may read", () => {
    const dir = temporaryDirectory("identity-perms-file");
    cleanups.push(dir.remove);
    loadOrCreateSigningKey(dir.path);
    const keyFile = join(dir.path, SIGNING_KEY_FILE);
    chmodSync(keyFile, 0o644);
    expect(() => loadOrCreateSigningKey(dir.path)).toThrow(/has mode 0644, open to other users: it must be 0600/);
    chmodSync(keyFile, 0o600);
    expect(loadOrCreateSigningKey(dir.path).kid).toBeTruthy();
    expect(readFileSync(keyFile, "utf8")).toContain('"d"');
  });
});

describe("identity service: Host check", () => {
  it("refuses a foreign Host (DNS rebinding) on every route, and serves loopback names and IP literals", async () => {
    for (const path of ["/.well-known/jwks.json", "/health", "/v1/tokens/issue"]) {
      const foreign = await getWithHost(new URL(path, service.url), `rebind.example:${service.url.port}`);
      expect(foreign.status).toBe(421);
      expect(foreign.body.error).toBe("misdirected_request");
    }
    for (const host of [`localhost:${service.url.port}`, `127.0.0.1:${service.url.port}`, "10.1.2.3", `[::1]:${service.url.port}`, "LOCALHOST."]) {
      expect((await getWithHost(new URL("/health", service.url), host)).status).toBe(200);
    }
  });
});
