/**
 * Cancel and List on the real stack: the API (authentication off, and a second
 * server on the same Temporal with it on), a real worker with a real policy
 * engine behind a holding proxy (so a session waits in its policy step until
 * it is cancelled: a slow engine, not a stand-in), a real identity service,
 * the run's Ray and Kafka. The audit topic is read back from Kafka.
 */
import { randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { AuditStatus, ListRequestSchema, SessionService, SessionStatus } from "../../gen/somagent/orchestrator/v1/session_pb.js";
import { identityServiceSigningKey, signCallerToken } from "../../local/caller-token.js";
import { readAuditLedger } from "../faults/audit-ledger.js";
import { startPolicyFaultProxy, type PolicyFaultProxy } from "../faults/policy-fault-proxy.js";
import { startIdentityService, startPolicyEngine, temporaryDirectory, type StartedCompanion } from "../companions/start-companions.js";
import { infra } from "../support/infra.js";
import { waitFor } from "../support/wait-for.js";
import { identityServiceAuth, startApiFixture, startExtraServer, startFixtureWorker, type ApiFixture, type FixtureWorker } from "./api-fixture.js";
import type { ApiServer } from "../../src/api/server.js";

// Real servers on a machine shared with other test runs: generous limits, no timing assertions.
vi.setConfig({ testTimeout: 180_000, hookTimeout: 240_000 });

const ISSUER = "somagent-identity-lifecycle-test";
const AUDIENCE = "somagent-orchestrator-api";
/** Two tenants per test run, so sessions of earlier runs on a shared server never count. */
const run = randomUUID().slice(0, 8);
const TENANT_A = `tenant-a-${run}`;
const TENANT_B = `tenant-b-${run}`;

let keyDir: ReturnType<typeof temporaryDirectory>;
let identityService: StartedCompanion;
let policyEngine: StartedCompanion;
let policyProxy: PolicyFaultProxy;
let fixture: ApiFixture;
let worker: FixtureWorker | undefined;
let authServer: { server: ApiServer; baseUrl: string } | undefined;
const tokens: Record<string, string> = {};

beforeAll(async () => {
  keyDir = temporaryDirectory("lifecycle-identity-keys");
  // The run's tenants, so the identity service issues their sessions' tokens and the sessions complete.
  const usersFile = join(keyDir.path, "users.json");
  writeFileSync(usersFile, JSON.stringify({ users: [{ user_id: "user-demo", tenants: [TENANT_A, TENANT_B], capabilities: ["session:start"], active: true }] }));
  identityService = await startIdentityService(keyDir.path, { issuer: ISSUER, usersFile });
  policyEngine = await startPolicyEngine();
  policyProxy = await startPolicyFaultProxy(policyEngine.url);
  fixture = await startApiFixture();
  authServer = await startExtraServer(fixture, { auth: identityServiceAuth(identityService.url, ISSUER, AUDIENCE) });
  worker = await startFixtureWorker(fixture, { policyEngine: policyProxy.url, identityService: identityService.url }, "lifecycle");
  const signingKey = identityServiceSigningKey(keyDir.path);
  tokens.a = await signCallerToken(signingKey, { issuer: ISSUER, audience: AUDIENCE, tenant: TENANT_A, user: "user-demo" });
  tokens.b = await signCallerToken(signingKey, { issuer: ISSUER, audience: AUDIENCE, tenant: TENANT_B, user: "user-demo" });
});

afterAll(async () => {
  policyProxy?.release();
  await authServer?.server.shutdown();
  await worker?.close();
  await fixture?.close();
  await policyProxy?.close();
  await policyEngine?.close();
  await identityService?.close();
  keyDir?.remove();
});

const grpc = (baseUrl = fixture.baseUrl, token?: string) =>
  createClient(
    SessionService,
    createGrpcTransport({ baseUrl, interceptors: token ? [(next) => (req) => (req.header.set("authorization", `Bearer ${token}`), next(req))] : [] }),
  );

async function rest(method: string, path: string, body?: unknown, token?: string, baseUrl = fixture.baseUrl) {
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(`${baseUrl}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, text, json: (text.startsWith("{") ? JSON.parse(text) : undefined) as Record<string, any> };
}

async function start(tenant: string, sessionId: string) {
  return grpc().start({ tenant, user: "user-demo", prompt: "kick off a demo", metadata: { session_id: sessionId } });
}

/** Starts a session and waits until its policy request is held by the proxy: it is then inside its first step. */
async function startHeld(tenant: string, sessionId: string): Promise<string> {
  const { workflowId } = await start(tenant, sessionId);
  await waitFor(`${sessionId} held in its policy step`, () => policyProxy.requestsBySession().has(sessionId), 60_000);
  return workflowId;
}

type ListInit = Omit<MessageInitShape<typeof ListRequestSchema>, "$typeName">;

/** A request as a label (timestamps hold bigints). */
const shown = (request: ListInit) => JSON.stringify(request, (_, value: unknown) => (typeof value === "bigint" ? String(value) : value));

async function failure(call: Promise<unknown>): Promise<ConnectError> {
  const error = await call.then(() => undefined, (e: unknown) => e);
  expect(error, "the call should have failed").toBeInstanceOf(Error);
  return ConnectError.from(error);
}

describe("Cancel", () => {
  const cancelled: string[] = [];
  const completedId = `done-${run}`;

  beforeAll(() => policyProxy.inject({ kind: "hold" }));

  it("over gRPC cancels a session held in a step: Watch ends canceled, Get says CANCELED, a second Cancel answers the same", async () => {
    const sessionId = `cancel-grpc-${run}`;
    const workflowId = await startHeld(TENANT_A, sessionId);
    cancelled.push(sessionId);
    const first = await grpc().cancel({ workflowId });
    expect([SessionStatus.RUNNING, SessionStatus.CANCELED]).toContain(first.status);

    const events = [];
    for await (const event of grpc().watch({ workflowId })) events.push(event);
    expect(events.map((e) => e.event.case)).toEqual(["started", "auditEmitted", "canceled"]);
    const [, audit, end] = events;
    expect(audit?.event.value).toMatchObject({ status: AuditStatus.CANCELED });
    expect(end?.event.value).toMatchObject({ sessionId, auditEventId: (audit?.event.value as { auditId: string }).auditId });

    const got = await grpc().get({ workflowId });
    expect(got.status).toBe(SessionStatus.CANCELED);
    expect(got.closeTime).toBeDefined();
    const again = await grpc().cancel({ workflowId });
    expect(again).toMatchObject({ workflowId, runId: first.runId, status: SessionStatus.CANCELED });
  });

  it("over REST (POST :cancel, with or without a body) cancels a session; Watch's server-sent events end with canceled", async () => {
    const sessionId = `cancel-rest-${run}`;
    const workflowId = await startHeld(TENANT_A, sessionId);
    cancelled.push(sessionId);
    const first = await rest("POST", `/v1/sessions/${workflowId}:cancel`, {});
    expect(first.status).toBe(200);
    expect(first.json).toMatchObject({ workflow_id: workflowId });

    const watch = await rest("GET", `/v1/sessions/${workflowId}:watch`);
    // Each event's case is its one key besides sequence and time; the stream's own `event: end` carries `{}`.
    const kinds = [...watch.text.matchAll(/^data: (.*)$/gm)].flatMap((m) => Object.keys(JSON.parse(m[1] as string)).filter((k) => k !== "sequence" && k !== "time"));
    expect(kinds).toEqual(["started", "audit_emitted", "canceled"]);
    expect(watch.text).toMatch(/event: end\ndata: \{\}\n\n$/);

    const got = await rest("GET", `/v1/sessions/${workflowId}`);
    expect(got.json).toMatchObject({ status: "SESSION_STATUS_CANCELED" });
    const again = await rest("POST", `/v1/sessions/${workflowId}:cancel`);
    expect(again.status).toBe(200);
    expect(again.json).toMatchObject({ workflow_id: workflowId, status: "SESSION_STATUS_CANCELED" });
  });

  it("refuses to cancel a finished session with FAILED_PRECONDITION naming its status (HTTP 400)", async () => {
    // The held policy calls of the cancelled sessions go on to the engine; their answers come too late to matter.
    policyProxy.release();
    policyProxy.inject({ kind: "none" });
    const { workflowId } = await start(TENANT_A, completedId);
    await fixture.connection.client.workflow.getHandle(workflowId).result();
    const error = await failure(grpc().cancel({ workflowId }));
    expect(error.code).toBe(Code.FailedPrecondition);
    expect(error.rawMessage).toContain("COMPLETED");
    const overRest = await rest("POST", `/v1/sessions/${workflowId}:cancel`, {});
    expect(overRest.status).toBe(400);
    expect(overRest.json).toMatchObject({ status: "FAILED_PRECONDITION" });
    expect((await grpc().get({ workflowId })).status).toBe(SessionStatus.COMPLETED);
  });

  it("follows Get's tenant rule: another tenant's session is NOT_FOUND", async () => {
    const { workflowId } = await grpc(authServer?.baseUrl, tokens.a).start({ tenant: TENANT_A, user: "user-demo", prompt: "p", metadata: { session_id: `own-${run}` } });
    const error = await failure(grpc(authServer?.baseUrl, tokens.b).cancel({ workflowId }));
    expect(error.code).toBe(Code.NotFound);
    expect((await failure(grpc(authServer?.baseUrl, tokens.b).get({ workflowId }))).code).toBe(Code.NotFound);
    await fixture.connection.client.workflow.getHandle(workflowId).result();
  });

  it("leaves exactly one audit event per session on Kafka: AUDIT_STATUS_CANCELED for the cancelled ones", async () => {
    const ledger = await readAuditLedger(infra().kafka.bootstrap, worker?.auditTopic ?? "");
    for (const sessionId of cancelled) {
      const audits = [...(ledger.get(sessionId)?.byAuditId.values() ?? [])];
      expect(audits, sessionId).toHaveLength(1);
      expect(audits[0]).toMatchObject({ status: "AUDIT_STATUS_CANCELED", deliveries: 1 });
    }
    expect([...(ledger.get(completedId)?.byAuditId.values() ?? [])].map((a) => a.status)).toEqual(["AUDIT_STATUS_ACCEPTED"]);
  });
});

describe("List", () => {
  /** Workflow ids started per tenant by anonymous callers, newest last. */
  const started: Record<string, string[]> = { [TENANT_A]: [], [TENANT_B]: [] };
  let canceledId = "";
  let between: Date;

  beforeAll(async () => {
    policyProxy.inject({ kind: "none" });
    for (const [tenant, count] of [[TENANT_A, 4], [TENANT_B, 2]] as const) {
      for (let i = 0; i < count; i++) {
        const { workflowId } = await start(tenant, `list-${tenant}-${i}`);
        started[tenant]?.push(workflowId);
        await fixture.connection.client.workflow.getHandle(workflowId).result();
        if (tenant === TENANT_A && i === 1) between = new Date();
      }
    }
    policyProxy.inject({ kind: "hold" });
    canceledId = await startHeld(TENANT_A, `list-canceled-${run}`);
    await grpc().cancel({ workflowId: canceledId });
    await fixture.connection.client.workflow.getHandle(canceledId).result().catch(() => undefined);
    policyProxy.release();
    policyProxy.inject({ kind: "none" });
  });

  /** Every page of a List, following next_page_token; waits (bounded) until visibility shows `expected` sessions. */
  async function listAll(request: ListInit, expected: number, client = grpc()) {
    let pages: Awaited<ReturnType<typeof client.list>>[] = [];
    await waitFor(`List ${shown(request)} shows ${expected} sessions`, async () => {
      pages = [];
      let pageToken = "";
      do {
        const page = await client.list({ ...request, pageToken });
        pages.push(page);
        pageToken = page.nextPageToken;
      } while (pageToken !== "");
      return pages.flatMap((p) => p.sessions).length === expected;
    }, 60_000);
    return { pages, sessions: pages.flatMap((p) => p.sessions) };
  }

  it("pages through one tenant's sessions over gRPC, finished ones by close time newest first, never another tenant's", async () => {
    // Tenant A: Cancel's four sessions (two cancelled, one completed, one started with a token), four here and one cancelled here.
    const { pages, sessions } = await listAll({ tenant: TENANT_A, pageSize: 2 }, 9);
    expect(pages.map((p) => p.sessions.length)).toEqual([2, 2, 2, 2, 1]);
    const ids = sessions.map((s) => s.workflowId);
    expect(ids.slice(0, 5)).toEqual([canceledId, ...[...(started[TENANT_A] ?? [])].reverse()]);
    expect(ids.some((id) => started[TENANT_B]?.includes(id))).toBe(false);
    const first = sessions.find((s) => s.workflowId === started[TENANT_A]?.[0]);
    expect(first).toMatchObject({ sessionId: `list-${TENANT_A}-0`, user: "user-demo", model: "somagent-demo", status: SessionStatus.COMPLETED });
    expect(first?.startTime).toBeDefined();
    expect(first?.closeTime).toBeDefined();
    const { sessions: other } = await listAll({ tenant: TENANT_B }, 2);
    expect(other.map((s) => s.workflowId).sort()).toEqual([...(started[TENANT_B] ?? [])].sort());
  });

  it("filters by status and by start-time range", async () => {
    const { sessions: canceled } = await listAll({ tenant: TENANT_A, statuses: [SessionStatus.CANCELED] }, 3);
    expect(canceled.every((s) => s.status === SessionStatus.CANCELED)).toBe(true);
    expect(canceled.map((s) => s.workflowId)).toContain(canceledId);
    const { sessions: late } = await listAll({ tenant: TENANT_A, statuses: [SessionStatus.COMPLETED], startTimeFrom: timestampFromDate(between) }, 2);
    expect(late.map((s) => s.workflowId)).toEqual([...(started[TENANT_A]?.slice(2) ?? [])].reverse());
  });

  it("over REST: GET /v1/sessions with query parameters, and an opaque next_page_token", async () => {
    const from = between.toISOString();
    const first = await rest("GET", `/v1/sessions?tenant=${TENANT_A}&page_size=1&statuses=SESSION_STATUS_COMPLETED&start_time_from=${from}`);
    expect(first.status).toBe(200);
    expect(first.json.sessions).toHaveLength(1);
    expect(first.json.sessions[0]).toMatchObject({ workflow_id: started[TENANT_A]?.[3], status: "SESSION_STATUS_COMPLETED", user: "user-demo" });
    expect(first.json.sessions[0]).not.toHaveProperty("token");
    const second = await rest("GET", `/v1/sessions?tenant=${TENANT_A}&page_size=1&statuses=SESSION_STATUS_COMPLETED&start_time_from=${from}&page_token=${first.json.next_page_token}`);
    expect(second.json.sessions.map((s: { workflow_id: string }) => s.workflow_id)).toEqual([started[TENANT_A]?.[2]]);
  });

  it("with authentication, lists the caller's tenant only (from the token), never sessions started without one", async () => {
    const a = grpc(authServer?.baseUrl, tokens.a);
    const b = grpc(authServer?.baseUrl, tokens.b);
    const { workflowId: ofB } = await b.start({ tenant: TENANT_B, user: "user-demo", prompt: "p", metadata: { session_id: `auth-b-${run}` } });
    const { sessions: listedA } = await listAll({}, 1, a);
    expect(listedA.map((s) => s.workflowId)).toEqual([`session-own-${run}`]);
    const { sessions: listedB } = await listAll({ tenant: TENANT_B }, 1, b);
    expect(listedB.map((s) => s.workflowId)).toEqual([ofB]);
    const viaRest = await rest("GET", "/v1/sessions", undefined, tokens.b, authServer?.baseUrl);
    expect(viaRest.json.sessions.map((s: { workflow_id: string }) => s.workflow_id)).toEqual([ofB]);
    const mismatch = await failure(a.list({ tenant: TENANT_B }));
    expect(mismatch.code).toBe(Code.PermissionDenied);
  });

  it("refuses a bad page_token, page_size, time range or a missing tenant with INVALID_ARGUMENT naming the field", async () => {
    const { pages } = await listAll({ tenant: TENANT_A, pageSize: 2 }, 9);
    const token = pages[0]?.nextPageToken ?? "";
    const tampered = `${token.slice(0, -2)}${token.endsWith("AA") ? "BB" : "AA"}`;
    const cases: [ListInit, string][] = [
      [{ tenant: TENANT_A, pageSize: 2, pageToken: tampered }, "page_token"],
      [{ tenant: TENANT_A, pageSize: 2, pageToken: "not a token!" }, "page_token"],
      // A token of another query: the same tenant, another filter.
      [{ tenant: TENANT_A, pageSize: 2, pageToken: token, statuses: [SessionStatus.COMPLETED] }, "page_token"],
      [{ tenant: TENANT_B, pageSize: 2, pageToken: token }, "page_token"],
      [{ tenant: TENANT_A, pageSize: -1 }, "page_size"],
      [{ tenant: TENANT_A, startTimeFrom: timestampFromMs(2_000_000), startTimeTo: timestampFromMs(1_000_000) }, "start_time_to"],
      [{}, "tenant"],
    ];
    for (const [request, field] of cases) {
      const error = await failure(grpc().list(request));
      expect(error.code, shown(request)).toBe(Code.InvalidArgument);
      expect(error.rawMessage).toContain(field);
    }
    const overRest = await rest("GET", `/v1/sessions?tenant=${TENANT_A}&page_token=${tampered}`);
    expect(overRest.status).toBe(400);
    expect(overRest.json.details[0].fieldViolations[0].field).toBe("page_token");
  });
});
