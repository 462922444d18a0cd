/**
 * Caller authentication, tenant isolation and who receives the session token,
 * on all four protocols, against the real stack: the API (auth on) with a
 * Temporal dev server of its own; a real identity service whose JWKS the API
 * fetches and whose key signs the caller tokens (as `npm run token` does); a
 * real session worker (policy engine, identity service, the run's Ray and
 * Kafka) that completes the sessions, so Get and Watch carry a real token.
 * The file ends by printing the auth matrix: one row per case, one column per
 * protocol.
 */
import { generateKeyPairSync, randomUUID } from "node:crypto";
import { ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";
import { SessionService } from "../../gen/somagent/orchestrator/v1/session_pb.js";
import { identityServiceSigningKey, signCallerToken, type CallerTokenRequest } from "../../local/caller-token.js";
import { codeName } from "../../src/api/errors.js";
import { createServer } from "../../src/api/server.js";
import { loadOrCreateSigningKey, type SigningKey } from "../../src/companions/identity-service/signing-key.js";
import { createLogger } from "../../src/shared/logger.js";
import { createMetricsRegistry } from "../../src/shared/metrics.js";
import { startIdentityService, startPolicyEngine, temporaryDirectory, type StartedCompanion } from "../companions/start-companions.js";
import { identityServiceAuth, startApiFixture, startFixtureWorker, type FixtureWorker, type ApiFixture } from "./api-fixture.js";
import { freePort } from "./temporal-dev-server.js";

const ISSUER = "somagent-identity-auth-test";
const AUDIENCE = "somagent-orchestrator-api";
const OWNER = { tenant: "tenant-demo", user: "user-demo" };
const COLLEAGUE = { tenant: "tenant-demo", user: "user-colleague" };
const STRANGER = { tenant: "tenant-other", user: "user-other" };

let keyDir: ReturnType<typeof temporaryDirectory>;
let identityService: StartedCompanion;
let policyEngine: StartedCompanion;
let fixture: ApiFixture;
let workerStack: FixtureWorker | undefined;
let signingKey: SigningKey;
/** Caller tokens by name, signed once the identity service's key exists. */
const tokens: Record<string, string> = {};
/** The completed session of OWNER every protocol reads. */
const OWNED_ID = `owned-${randomUUID().slice(0, 8)}`;
const OWNED = `session-${OWNED_ID}`;
let ownedRunId: string;
/** A workflow with a session's id scheme that is not a session (another workflow type). */
const NOT_A_SESSION = `session-not-a-session-${randomUUID().slice(0, 8)}`;

const caller = (request: Omit<CallerTokenRequest, "issuer" | "audience"> & Partial<CallerTokenRequest>) =>
  signCallerToken(signingKey, { issuer: ISSUER, audience: AUDIENCE, ...request });

beforeAll(async () => {
  keyDir = temporaryDirectory("auth-identity-keys");
  identityService = await startIdentityService(keyDir.path, { issuer: ISSUER });
  policyEngine = await startPolicyEngine();
  signingKey = identityServiceSigningKey(keyDir.path);
  fixture = await startApiFixture({ auth: identityServiceAuth(identityService.url, ISSUER, AUDIENCE) });

  workerStack = await startFixtureWorker(fixture, { policyEngine: new URL(policyEngine.url), identityService: new URL(identityService.url) }, "auth-test");

  tokens.owner = await caller(OWNER);
  tokens.colleague = await caller(COLLEAGUE);
  tokens.stranger = await caller(STRANGER);
  const now = Math.floor(Date.now() / 1000);
  tokens.expired = await caller({ ...OWNER, issuedAt: now - 7200, ttlSeconds: 3600 });
  tokens.wrongAudience = await caller({ ...OWNER, audience: "some-other-api" });
  tokens.wrongIssuer = await caller({ ...OWNER, issuer: "someone-else" });
  // Signed by another key under the published key's kid: only the signature is wrong.
  tokens.badSignature = await signCallerToken({ ...signingKey, privateKey: generateKeyPairSync("ed25519").privateKey }, { ...OWNER, issuer: ISSUER, audience: AUDIENCE });
  tokens.malformed = "not.a-jwt";

  // The owner's session, run to completion by the worker: it carries a real token.
  const started = await rest.start(startBody(OWNER, OWNED_ID), tokens.owner);
  expect(started.code).toBe("OK");
  ownedRunId = started.runId ?? "";
  await fixture.connection.client.workflow.getHandle(OWNED).result();
  await fixture.connection.client.workflow.start("some-other-workflow", { taskQueue: `nobody-${randomUUID()}`, workflowId: NOT_A_SESSION });
}, 240_000);

afterAll(async () => {
  printMatrix();
  await workerStack?.close();
  await fixture?.close();
  await identityService?.close();
  await policyEngine?.close();
  keyDir?.remove();
}, 60_000);

/** What a protocol answered, reduced to what the matrix compares. */
interface Outcome {
  /** `OK` or the canonical code name. */
  code: string;
  message?: string;
  /** The `WWW-Authenticate` header or metadata. */
  challenge?: string | null;
  /** REST only: the HTTP status. */
  httpStatus?: number;
  runId?: string;
  /** The raw session token Get's result or Watch's `completed` event carried ("" when withheld). */
  token?: string;
  /** `sub` of the token's claims, shown whether or not the token is. */
  claimsSub?: string;
  /** Watch: the event cases in order. */
  events?: string[];
}

interface StartBody {
  tenant: string;
  user: string;
  prompt: string;
  metadata: { session_id: string };
}

const startBody = (who: { tenant: string; user: string }, sessionId: string): StartBody => ({
  ...who,
  prompt: "kick off a demo",
  metadata: { session_id: sessionId },
});

interface Protocol {
  start(body: StartBody, token?: string): Promise<Outcome>;
  get(workflowId: string, token?: string): Promise<Outcome>;
  watch(workflowId: string, token?: string): Promise<Outcome>;
}

function connectProtocol(transport: () => Transport): Protocol {
  const client = () => createClient(SessionService, transport());
  const options = (token?: string) => ({ headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });
  const failed = (error: unknown): Outcome => {
    const e = ConnectError.from(error);
    return { code: codeName(e.code), message: e.rawMessage, challenge: e.metadata.get("www-authenticate") };
  };
  return {
    async start(body, token) {
      try {
        const started = await client().start(body, options(token));
        return { code: "OK", runId: started.runId };
      } catch (error) {
        return failed(error);
      }
    },
    async get(workflowId, token) {
      try {
        const got = await client().get({ workflowId }, options(token));
        return { code: "OK", token: got.result?.token?.token, claimsSub: got.result?.token?.claims?.sub };
      } catch (error) {
        return failed(error);
      }
    },
    async watch(workflowId, token) {
      const outcome: Outcome = { code: "OK", events: [] };
      try {
        for await (const event of client().watch({ workflowId }, options(token))) {
          outcome.events?.push(event.event.case ?? "");
          if (event.event.case === "completed") {
            outcome.token = event.event.value.token?.token;
            outcome.claimsSub = event.event.value.token?.claims?.sub;
          }
        }
      } catch (error) {
        return failed(error);
      }
      return outcome;
    },
  };
}

function baseUrl(): string {
  return fixture.baseUrl;
}

const rest: Protocol = (() => {
  const headers = (token?: string): Record<string, string> => (token === undefined ? {} : { authorization: `Bearer ${token}` });
  const failed = async (response: Response): Promise<Outcome> => {
    const body = (await response.json()) as { status: string; message: string };
    return { code: body.status, message: body.message, challenge: response.headers.get("www-authenticate"), httpStatus: response.status };
  };
  return {
    async start(body, token) {
      const response = await fetch(`${baseUrl()}/v1/sessions/start`, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers(token) },
        body: JSON.stringify(body),
      });
      if (response.status !== 200) return failed(response);
      const started = (await response.json()) as { run_id: string };
      return { code: "OK", runId: started.run_id, httpStatus: 200 };
    },
    async get(workflowId, token) {
      const response = await fetch(`${baseUrl()}/v1/sessions/${workflowId}`, { headers: headers(token) });
      if (response.status !== 200) return failed(response);
      const got = (await response.json()) as { result?: { token?: { token?: string; claims?: { sub?: string } } } };
      return { code: "OK", httpStatus: 200, token: got.result?.token?.token ?? "", claimsSub: got.result?.token?.claims?.sub };
    },
    async watch(workflowId, token) {
      const response = await fetch(`${baseUrl()}/v1/sessions/${workflowId}:watch`, { headers: headers(token) });
      if (response.status !== 200) return failed(response);
      const outcome: Outcome = { code: "OK", httpStatus: 200, events: [] };
      for (const block of (await response.text()).split("\n\n")) {
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (!data || /^event: end$/m.test(block)) continue;
        const event = JSON.parse(data) as Record<string, unknown> & { completed?: { token?: { token?: string; claims?: { sub?: string } } } };
        const kind = Object.keys(event).find((key) => key !== "sequence" && key !== "time") ?? "";
        outcome.events?.push(kind);
        if (event.completed) {
          outcome.token = event.completed.token?.token ?? "";
          outcome.claimsSub = event.completed.token?.claims?.sub;
        }
      }
      return outcome;
    },
  };
})();

const PROTOCOLS: Record<string, Protocol> = {
  gRPC: connectProtocol(() => createGrpcTransport({ baseUrl: baseUrl() })),
  "gRPC-Web": connectProtocol(() => createGrpcWebTransport({ baseUrl: baseUrl(), httpVersion: "1.1" })),
  Connect: connectProtocol(() => createConnectTransport({ baseUrl: baseUrl(), httpVersion: "1.1" })),
  REST: rest,
};

/** case → protocol → what was observed, printed after the file. */
const matrix = new Map<string, Map<string, string>>();
function record(row: string, protocol: string, cell: string): void {
  if (!matrix.has(row)) matrix.set(row, new Map());
  matrix.get(row)?.set(protocol, cell);
}

function printMatrix(): void {
  const columns = Object.keys(PROTOCOLS);
  const lines = [
    `| case | ${columns.join(" | ")} |`,
    `|---|${columns.map(() => "---").join("|")}|`,
    ...[...matrix].map(([row, cells]) => `| ${row} | ${columns.map((c) => cells.get(c) ?? "-").join(" | ")} |`),
  ];
  console.log(`\nauth matrix (API_AUTH_JWKS_URL set)\n${lines.join("\n")}\n`);
}

/** A cell: the code, with HTTP status and token facts where they tell something. */
function cell(outcome: Outcome): string {
  const parts = [outcome.code];
  if (outcome.httpStatus !== undefined) parts.push(`${outcome.httpStatus}`);
  if (outcome.challenge) parts.push("+WWW-Authenticate");
  if (outcome.token !== undefined) parts.push(outcome.token === "" ? "token withheld" : "raw token");
  return parts.join(" ");
}

const UNAUTHENTICATED_CASES = [
  ["no token", undefined, /^Bearer realm="[^"]+"$/],
  ["malformed token", "malformed", /error="invalid_token"/],
  ["expired token", "expired", /error="invalid_token", error_description="the bearer token has expired"/],
  ["bad signature", "badSignature", /error="invalid_token", error_description="the bearer token's signature is invalid"/],
  ["wrong audience", "wrongAudience", /error="invalid_token", error_description="the bearer token's aud claim/],
  ["wrong issuer", "wrongIssuer", /error="invalid_token", error_description="the bearer token's iss claim/],
] as const;

describe.each(Object.keys(PROTOCOLS))("auth matrix over %s", (name) => {
  const protocol = () => PROTOCOLS[name] as Protocol;
  const isRest = name === "REST";

  it.each(UNAUTHENTICATED_CASES)("Get with %s → UNAUTHENTICATED with a WWW-Authenticate Bearer challenge", async (label, key, challenge) => {
    const outcome = await protocol().get(OWNED, key === undefined ? undefined : tokens[key]);
    record(`Get, ${label}`, name, cell(outcome));
    expect(outcome.code).toBe("UNAUTHENTICATED");
    expect(outcome.challenge).toMatch(challenge);
    if (isRest) expect(outcome.httpStatus).toBe(401);
    expect(outcome.token).toBeUndefined();
  });

  it.each(UNAUTHENTICATED_CASES.slice(0, 3))("Watch and Start with %s → UNAUTHENTICATED", async (label, key) => {
    const token = key === undefined ? undefined : tokens[key];
    const watched = await protocol().watch(OWNED, token);
    const started = await protocol().start(startBody(OWNER, `unauth-${randomUUID()}`), token);
    record(`Watch, ${label}`, name, cell(watched));
    record(`Start, ${label}`, name, cell(started));
    expect([watched.code, started.code]).toEqual(["UNAUTHENTICATED", "UNAUTHENTICATED"]);
    expect(watched.events).toBeUndefined();
  });

  it("Get of a malformed workflow_id with no token → UNAUTHENTICATED, not INVALID_ARGUMENT: authentication runs before validation", async () => {
    const outcome = await protocol().get("-not-a-valid-id");
    record("Get, invalid workflow_id, no token", name, cell(outcome));
    expect(outcome.code).toBe("UNAUTHENTICATED");
    const authenticated = await protocol().get("-not-a-valid-id", tokens.owner);
    expect(authenticated.code).toBe("INVALID_ARGUMENT");
  });

  it("Get of the caller's own session → OK with the raw session token", async () => {
    const outcome = await protocol().get(OWNED, tokens.owner);
    record("Get, own session", name, cell(outcome));
    expect(outcome.code).toBe("OK");
    expect(outcome.token?.split(".")).toHaveLength(3);
    expect(outcome.claimsSub).toBe(OWNER.user);
  });

  it("Watch of the caller's own session → OK, its completed event with the raw session token", async () => {
    const outcome = await protocol().watch(OWNED, tokens.owner);
    record("Watch, own session", name, cell(outcome));
    expect(outcome.code).toBe("OK");
    expect(outcome.events?.[0]).toBe("started");
    expect(outcome.events?.at(-1)).toBe("completed");
    expect(outcome.token?.split(".")).toHaveLength(3);
  });

  it("Get and Watch by another user of the same tenant → OK, the token's claims without the token", async () => {
    const got = await protocol().get(OWNED, tokens.colleague);
    const watched = await protocol().watch(OWNED, tokens.colleague);
    record("Get, same tenant, other user", name, cell(got));
    record("Watch, same tenant, other user", name, cell(watched));
    expect(got).toMatchObject({ code: "OK", token: "", claimsSub: OWNER.user });
    expect(watched).toMatchObject({ code: "OK", token: "", claimsSub: OWNER.user });
    expect(watched.events?.at(-1)).toBe("completed");
  });

  it("Get and Watch of another tenant's session → NOT_FOUND, the same answer as for an id never used", async () => {
    const never = `session-never-${randomUUID().slice(0, 8)}`;
    const got = await protocol().get(OWNED, tokens.stranger);
    const watched = await protocol().watch(OWNED, tokens.stranger);
    const unknownGet = await protocol().get(never, tokens.stranger);
    const unknownWatch = await protocol().watch(never, tokens.stranger);
    record("Get, other tenant's session", name, cell(got));
    record("Watch, other tenant's session", name, cell(watched));
    const same = (o: Outcome, id: string) => ({ ...o, message: o.message?.replaceAll(id, "<id>") });
    expect(got.code).toBe("NOT_FOUND");
    expect(same(got, OWNED)).toEqual(same(unknownGet, never));
    expect(same(watched, OWNED)).toEqual(same(unknownWatch, never));
  });

  it("Get and Watch of a workflow that is not a session → NOT_FOUND", async () => {
    const got = await protocol().get(NOT_A_SESSION, tokens.owner);
    const watched = await protocol().watch(NOT_A_SESSION, tokens.owner);
    record("Get, not a session", name, cell(got));
    record("Watch, not a session", name, cell(watched));
    expect([got.code, watched.code]).toEqual(["NOT_FOUND", "NOT_FOUND"]);
  });

  it("Start with another tenant's session_id → ALREADY_EXISTS, carrying none of its data", async () => {
    const outcome = await protocol().start(startBody(STRANGER, OWNED_ID), tokens.stranger);
    record("Start, another tenant's session_id", name, cell(outcome));
    expect(outcome.code).toBe("ALREADY_EXISTS");
    if (isRest) expect(outcome.httpStatus).toBe(409);
    expect(outcome.runId).toBeUndefined();
    expect(outcome.message).not.toContain(ownedRunId);
    expect(outcome.message).not.toContain(OWNER.tenant);
  });

  it("Start with a session_id of another user of the same tenant → ALREADY_EXISTS; the owner's own retry → the same run", async () => {
    const colleague = await protocol().start(startBody(COLLEAGUE, OWNED_ID), tokens.colleague);
    const retry = await protocol().start(startBody(OWNER, OWNED_ID), tokens.owner);
    record("Start, same tenant, other user's session_id", name, cell(colleague));
    record("Start, own session_id again", name, cell(retry));
    expect(colleague.code).toBe("ALREADY_EXISTS");
    expect(retry).toMatchObject({ code: "OK", runId: ownedRunId });
  });

  it.each([
    ["tenant", { ...OWNER, tenant: STRANGER.tenant }],
    ["user", { ...OWNER, user: COLLEAGUE.user }],
  ] as const)("Start whose body names another %s than the token → PERMISSION_DENIED", async (field, who) => {
    const outcome = await protocol().start(startBody(who, `mismatch-${randomUUID()}`), tokens.owner);
    record(`Start, body names another ${field}`, name, cell(outcome));
    expect(outcome.code).toBe("PERMISSION_DENIED");
    expect(outcome.message).toContain(field);
    if (isRest) expect(outcome.httpStatus).toBe(403);
  });
});

describe("the issuer's keys", () => {
  it("fetches the JWKS again for a token signed by a rotated-in key, and answers UNAVAILABLE while the JWKS is unreachable", async () => {
    const port = await freePort();
    const dirs = ["rotation-a", "rotation-b", "rotation-c"].map((prefix) => temporaryDirectory(prefix));
    const [a, b, c] = dirs as [ReturnType<typeof temporaryDirectory>, ReturnType<typeof temporaryDirectory>, ReturnType<typeof temporaryDirectory>];
    let issuer: StartedCompanion | undefined = await startIdentityService(a.path, { issuer: ISSUER }, port);
    const server = createServer({
      sessions: fixture.sessions,
      registry: createMetricsRegistry({ processMetrics: false }),
      corsAllowedOrigins: [],
      shutdownGraceMs: 1_000,
      logger: createLogger("rotation-api", () => {}),
      auth: identityServiceAuth(`http://127.0.0.1:${port}`, ISSUER, AUDIENCE, { jwksTimeoutMs: 2_000, jwksCooldownMs: 0 }),
    });
    const { port: apiPort } = await server.listen(0);
    const statusWith = async (key: SigningKey) => {
      const token = await signCallerToken(key, { ...OWNER, issuer: ISSUER, audience: AUDIENCE });
      return (await fetch(`http://127.0.0.1:${apiPort}/v1/sessions/session-rotation-unknown`, { headers: { authorization: `Bearer ${token}` } })).status;
    };
    try {
      expect(await statusWith(identityServiceSigningKey(a.path))).toBe(404); // verified: the session is simply unknown
      await issuer.close();
      issuer = await startIdentityService(b.path, { issuer: ISSUER }, port); // the issuer rotated to a new key
      expect(await statusWith(identityServiceSigningKey(b.path))).toBe(404);
      await issuer.close();
      issuer = undefined;
      expect(await statusWith(loadOrCreateSigningKey(c.path))).toBe(503); // an unknown kid, and the JWKS unreachable
    } finally {
      await server.shutdown();
      await issuer?.close();
      for (const dir of dirs) dir.remove();
    }
  });
});

describe("what stays open with auth on", () => {
  it("answers /health, /ready, /metrics and gRPC health without a token", async () => {
    for (const path of ["/health", "/ready", "/metrics"]) expect((await fetch(`${baseUrl()}${path}`)).status).toBe(200);
    const health = createClient(Health, createGrpcTransport({ baseUrl: baseUrl() }));
    expect((await health.check({})).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
  });

  it("answers a Connect unary call without a token with HTTP 401 and the challenge as a response header", async () => {
    const response = await fetch(`${baseUrl()}/somagent.orchestrator.v1.SessionService/Get`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ workflow_id: OWNED }),
    });
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toMatch(/^Bearer realm=/);
    expect(await response.json()).toMatchObject({ code: "unauthenticated" });
  });

  it("logs no unauthenticated warning when auth is on, and exactly one when it is off", async () => {
    expect(fixture.logs.filter((line) => JSON.parse(line).level === "warn")).toEqual([]);
    const logs: string[] = [];
    const open = createServer({
      sessions: fixture.sessions,
      registry: createMetricsRegistry({ processMetrics: false }),
      corsAllowedOrigins: [],
      shutdownGraceMs: 1_000,
      logger: createLogger("open-api", (line) => logs.push(line)),
    });
    await open.listen(0);
    await open.shutdown();
    const warnings = logs.map((line) => JSON.parse(line) as { level: string; message: string }).filter((l) => l.level === "warn");
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.message).toMatch(/unauthenticated/);
  });
});
