import { randomBytes } from "node:crypto";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { defaultPayloadConverter, type Payload } from "@temporalio/common";
import proto, { type temporal } from "@temporalio/proto";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { SessionService, SessionStatus, type WatchResponse } from "../../gen/somagent/orchestrator/v1/session_pb.js";
import { createMetricsRegistry } from "../../src/shared/metrics.js";
import { createTemporalConnection, type TemporalConnection } from "../../src/temporal/connection.js";
import { CallerMismatchError, SessionAlreadyExistsError, SessionNotFoundError } from "../../src/temporal/errors.js";
import { ANONYMOUS_CALLER, OWNER_MEMO_KEY, createTemporalSessionPort, type SessionPort } from "../../src/temporal/session-port.js";
import { ACTIVITY, DEFAULT_MODEL, SESSION_WORKFLOW_TYPE, type SessionInput } from "../../src/workflows/contract.js";
import { startApiFixture, type ApiFixture } from "../api/api-fixture.js";
import { waitFor } from "../support/wait-for.js";

vi.setConfig({ testTimeout: 30_000 });
const { CommandType } = proto.temporal.api.enums.v1;

let fixture: ApiFixture;
beforeAll(async () => {
  fixture = await startApiFixture();
}, 60_000);
afterAll(() => fixture?.close(), 30_000);

const input = (sessionId: string): SessionInput => ({
  sessionId,
  tenant: "tenant-demo",
  user: "user-demo",
  prompt: "kick off a demo",
  model: DEFAULT_MODEL,
  metadata: { session_id: sessionId },
});

async function collect(iterable: AsyncIterable<WatchResponse>): Promise<WatchResponse[]> {
  const events: WatchResponse[] = [];
  for await (const event of iterable) events.push(event);
  return events;
}

describe("Temporal session port", () => {
  it("starts session-{id} on the task queue, and starting it again returns the same run: one execution only", async () => {
    const first = await fixture.sessions.start(input("port-idem"), ANONYMOUS_CALLER);
    const second = await fixture.sessions.start(input("port-idem"), ANONYMOUS_CALLER);
    expect(first.workflowId).toBe("session-port-idem");
    expect(second.runId).toBe(first.runId);
    const description = await fixture.connection.client.workflow.getHandle("session-port-idem").describe();
    expect(description.type).toBe(SESSION_WORKFLOW_TYPE);
    expect(description.taskQueue).toBe(fixture.connection.taskQueue);
    const query = `WorkflowId = "session-port-idem"`;
    await waitFor(async () => (await fixture.connection.client.workflow.count(query)).count > 0);
    expect((await fixture.connection.client.workflow.count(query)).count).toBe(1);
  });

  it("returns the closed run when a finished session is started again, and starts no second execution", async () => {
    const first = await fixture.sessions.start(input("port-closed"), ANONYMOUS_CALLER);
    await fixture.connection.client.workflow.getHandle("session-port-closed").terminate("closed for the test");
    const again = await fixture.sessions.start(input("port-closed"), ANONYMOUS_CALLER);
    expect(again.runId).toBe(first.runId);
    const query = `WorkflowId = "session-port-closed"`;
    await waitFor(async () => (await fixture.connection.client.workflow.count(query)).count > 0);
    expect((await fixture.connection.client.workflow.count(query)).count).toBe(1);
  });

  it("stores the workflow input encrypted in Temporal's history", async () => {
    await fixture.sessions.start(input("port-encrypted"), ANONYMOUS_CALLER);
    const history = await fixture.connection.connection.workflowService.getWorkflowExecutionHistory({
      namespace: "default",
      execution: { workflowId: "session-port-encrypted" },
    });
    const payload = history.history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
    expect(new TextDecoder().decode(payload?.metadata?.encoding ?? new Uint8Array())).toBe("binary/encrypted");
    expect(Buffer.from(payload?.data ?? []).toString("latin1")).not.toContain("kick off a demo");
  });

  it("describes a running session, and a terminated one with its close time", async () => {
    await fixture.sessions.start(input("port-describe"), ANONYMOUS_CALLER);
    const running = await fixture.sessions.describe("session-port-describe", ANONYMOUS_CALLER);
    expect(running.status).toBe(SessionStatus.RUNNING);
    expect(running.historyLength).toBeGreaterThanOrEqual(2n);
    await fixture.connection.client.workflow.getHandle("session-port-describe").terminate("test over");
    const terminated = await fixture.sessions.describe("session-port-describe", ANONYMOUS_CALLER);
    expect(terminated.status).toBe(SessionStatus.TERMINATED);
    expect(terminated.closeTime).toBeDefined();
  });

  it("throws SessionNotFoundError for an unknown workflow, on describe and on watch", async () => {
    await expect(fixture.sessions.describe("session-never-started", ANONYMOUS_CALLER)).rejects.toBeInstanceOf(SessionNotFoundError);
    await expect(collect(fixture.sessions.watch("session-never-started", 0n, ANONYMOUS_CALLER, new AbortController().signal))).rejects.toBeInstanceOf(
      SessionNotFoundError,
    );
  });

  it("throws SessionNotFoundError for a workflow that is not a session, also with authentication off", async () => {
    await fixture.connection.client.workflow.start("another-workflow-type", { taskQueue: "nobody-polls", workflowId: "session-port-not-a-session" });
    await expect(fixture.sessions.describe("session-port-not-a-session", ANONYMOUS_CALLER)).rejects.toBeInstanceOf(SessionNotFoundError);
    await expect(
      collect(fixture.sessions.watch("session-port-not-a-session", 0n, ANONYMOUS_CALLER, new AbortController().signal)),
    ).rejects.toBeInstanceOf(SessionNotFoundError);
    await expect(fixture.sessions.start(input("port-not-a-session"), ANONYMOUS_CALLER)).rejects.toBeInstanceOf(SessionAlreadyExistsError);
  });

  it("records the owner in the memo; an unauthenticated Start of the id by another tenant is ALREADY_EXISTS, an authenticated caller sees no unauthenticated session", async () => {
    await fixture.sessions.start(input("port-owner"), ANONYMOUS_CALLER);
    const description = await fixture.connection.client.workflow.getHandle("session-port-owner").describe();
    expect(description.memo?.[OWNER_MEMO_KEY]).toEqual({ tenant: "tenant-demo", user: "user-demo", authenticated: false });
    await expect(fixture.sessions.start({ ...input("port-owner"), tenant: "tenant-other" }, ANONYMOUS_CALLER)).rejects.toBeInstanceOf(SessionAlreadyExistsError);
    const authenticated = { authenticated: true, tenant: "tenant-demo", user: "user-demo" } as const;
    await expect(fixture.sessions.describe("session-port-owner", authenticated)).rejects.toBeInstanceOf(SessionNotFoundError);
    await expect(fixture.sessions.start(input("port-owner"), authenticated)).rejects.toBeInstanceOf(SessionAlreadyExistsError);
    await expect(fixture.sessions.start({ ...input("port-mismatch"), user: "someone-else" }, authenticated)).rejects.toBeInstanceOf(CallerMismatchError);
    // With authentication off, a session an authenticated caller started is returned to the same tenant and user (open mode, as before).
    const authed = await fixture.sessions.start(input("port-authed"), authenticated);
    expect((await fixture.sessions.start(input("port-authed"), ANONYMOUS_CALLER)).runId).toBe(authed.runId);
  });

  it("does not mistake a missing namespace for an unknown session", async () => {
    const [host, port] = fixture.temporal.address.split(":") as [string, string];
    const misconfigured = createTemporalConnection({
      address: { host, port: Number(port) },
      namespace: "no-such-namespace",
      taskQueue: "q",
      codecKeys: [{ id: "test", key: randomBytes(32) }],
    });
    try {
      const error = await createTemporalSessionPort(misconfigured, createMetricsRegistry({ processMetrics: false })).describe("session-x", ANONYMOUS_CALLER).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(Error);
      expect(error).not.toBeInstanceOf(SessionNotFoundError);
      expect(String(error)).toMatch(/namespace/i);
    } finally {
      await misconfigured.close();
    }
  });

  it("streams events as history grows (long-poll), ends after the terminal event, and resumes without gap or duplicate", async () => {
    await fixture.sessions.start(input("port-watch"), ANONYMOUS_CALLER);
    const seen: WatchResponse[] = [];
    const streaming = (async () => {
      for await (const event of fixture.sessions.watch("session-port-watch", 0n, ANONYMOUS_CALLER, new AbortController().signal)) seen.push(event);
    })();
    await waitFor(() => seen.length === 1);
    expect(seen[0]?.event.case).toBe("started");
    await fixture.connection.client.workflow.getHandle("session-port-watch").terminate("operator stop");
    await streaming;
    expect(seen.map((e) => e.event.case)).toEqual(["started", "failed"]);
    expect(seen[1]?.event.value).toMatchObject({ reason: "terminated: operator stop" });

    const replay = await collect(fixture.sessions.watch("session-port-watch", 0n, ANONYMOUS_CALLER, new AbortController().signal));
    expect(replay.map((e) => e.sequence)).toEqual(seen.map((e) => e.sequence));
    const resumed = await collect(fixture.sessions.watch("session-port-watch", seen[0]!.sequence, ANONYMOUS_CALLER, new AbortController().signal));
    expect(resumed.map((e) => e.sequence)).toEqual([seen[1]!.sequence]);
    const afterEnd = await collect(fixture.sessions.watch("session-port-watch", seen[1]!.sequence, ANONYMOUS_CALLER, new AbortController().signal));
    expect(afterEnd).toEqual([]);
  });

  it("serves several watchers of one session, over real sockets, from one history long-poll: each sees every event once, a late one from the start", async () => {
    await fixture.sessions.start(input("port-shared"), ANONYMOUS_CALLER);
    const workflowId = "session-port-shared";
    const watchedSessions = async () => (await fixture.registry.getSingleMetric("somagent_watched_sessions")?.get())?.values[0]?.value;
    const grpc = createClient(SessionService, createGrpcTransport({ baseUrl: fixture.baseUrl }));
    const connect = createClient(SessionService, createConnectTransport({ baseUrl: fixture.baseUrl, httpVersion: "2" }));
    const follow = (client: typeof grpc, seen: string[], signal?: AbortSignal) =>
      (async () => {
        try {
          for await (const event of client.watch({ workflowId }, { signal })) seen.push(`${event.sequence}:${event.event.case}`);
        } catch (error) {
          if (!signal?.aborted) throw error;
        }
      })();
    const first: string[] = [];
    const second: string[] = [];
    const leaving: string[] = [];
    const leave = new AbortController();
    const streams = [follow(grpc, first), follow(connect, second), follow(grpc, leaving, leave.signal)];
    await waitFor(() => first.length === 1 && second.length === 1 && leaving.length === 1);
    expect(await watchedSessions()).toBe(1);
    // One watcher leaving does not end the feed the others follow.
    leave.abort();
    const late: string[] = [];
    streams.push(follow(connect, late));
    await waitFor(() => late.length === 1);
    await fixture.connection.client.workflow.getHandle(workflowId).terminate("shared feed test");
    await Promise.all(streams);
    expect(first.map((e) => e.split(":")[1])).toEqual(["started", "failed"]);
    expect(second).toEqual(first);
    expect(late).toEqual(first);
    expect(leaving).toEqual(first.slice(0, 1));
    expect(await watchedSessions()).toBe(0);
  });

  it("ends a watch quietly when its signal aborts", async () => {
    await fixture.sessions.start(input("port-abort"), ANONYMOUS_CALLER);
    const controller = new AbortController();
    const seen: WatchResponse[] = [];
    const streaming = (async () => {
      for await (const event of fixture.sessions.watch("session-port-abort", 0n, ANONYMOUS_CALLER, controller.signal)) seen.push(event);
    })();
    await waitFor(() => seen.length === 1);
    controller.abort();
    await streaming;
    expect(seen.map((e) => e.event.case)).toEqual(["started"]);
  });
});

/**
 * Completes workflow and activity tasks by hand through Temporal's task API,
 * so the port reads a real history with encrypted activity results and a
 * closed outcome while the real worker (src/worker) does not exist yet. Each
 * test uses its own task queue so it only receives its own tasks.
 */
function createTaskDriver(connection: TemporalConnection) {
  const service = connection.connection.workflowService;
  // Task polls are long-polls: Temporal requires a deadline on them.
  const poll = <T>(fn: () => Promise<T>) => connection.connection.withDeadline(Date.now() + 20_000, fn);
  const taskQueue = { name: connection.taskQueue };
  const encode = async (value: unknown) => ({ payloads: await connection.codec.encode([defaultPayloadConverter.toPayload(value) as Payload]) });
  return {
    async completeWorkflowTask(commands: (encode: (value: unknown) => Promise<temporal.api.common.v1.IPayloads>) => Promise<temporal.api.command.v1.ICommand[]>) {
      const task = await poll(() => service.pollWorkflowTaskQueue({ namespace: "default", taskQueue, identity: "session-port-test" }));
      await service.respondWorkflowTaskCompleted({ namespace: "default", taskToken: task.taskToken, identity: "session-port-test", commands: await commands(encode) });
    },
    async completeActivityTask(result: unknown) {
      const task = await poll(() => service.pollActivityTaskQueue({ namespace: "default", taskQueue, identity: "session-port-test" }));
      await service.respondActivityTaskCompleted({ namespace: "default", taskToken: task.taskToken, identity: "session-port-test", result: await encode(result) });
    },
  };
}

describe("Temporal session port on sessions that ran (tasks completed by hand)", () => {
  let connection: TemporalConnection;
  let sessions: SessionPort;
  let registry: ReturnType<typeof createMetricsRegistry>;
  beforeAll(() => {
    const [host, port] = fixture.temporal.address.split(":") as [string, string];
    connection = createTemporalConnection({
      address: { host, port: Number(port) },
      namespace: "default",
      taskQueue: `hand-driven-${randomBytes(4).toString("hex")}`,
      codecKeys: [{ id: "test", key: randomBytes(32) }],
    });
    registry = createMetricsRegistry({ processMetrics: false });
    sessions = createTemporalSessionPort(connection, registry);
  });
  afterAll(() => connection?.close());

  const policy = (allowed: boolean) => ({ allowed, score: allowed ? 0 : 1, reasons: allowed ? [] : ["blocked"], constitutionHash: "h1" });
  const schedulePolicy = async () => [
    {
      commandType: CommandType.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK,
      scheduleActivityTaskCommandAttributes: {
        activityId: "1",
        activityType: { name: ACTIVITY.evaluatePolicy },
        taskQueue: { name: connection.taskQueue },
        startToCloseTimeout: { seconds: 10 as never },
      },
    },
  ];

  it.each([
    [true, SessionStatus.COMPLETED, "completed"],
    [false, SessionStatus.REJECTED, "rejected"],
  ] as const)("maps a finished session (policy allowed=%s) to status %i (%s) with its decrypted result, in Get and Watch", async (allowed, status, terminal) => {
    const sessionId = `ran-${allowed}`;
    const { workflowId } = await sessions.start(input(sessionId), ANONYMOUS_CALLER);
    const driver = createTaskDriver(connection);
    await driver.completeWorkflowTask(schedulePolicy);
    await driver.completeActivityTask(policy(allowed));
    await driver.completeWorkflowTask(async (encode) => [
      {
        commandType: CommandType.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION,
        completeWorkflowExecutionCommandAttributes: { result: await encode({ sessionId, policy: policy(allowed), auditEventId: "audit-1" }) },
      },
    ]);

    const got = await sessions.describe(workflowId, ANONYMOUS_CALLER);
    expect(got.status).toBe(status);
    expect(got.result).toMatchObject({ sessionId, auditEventId: "audit-1", policy: { allowed, constitutionHash: "h1" } });
    expect(got.closeTime).toBeDefined();

    const events: WatchResponse[] = [];
    for await (const event of sessions.watch(workflowId, 0n, ANONYMOUS_CALLER, new AbortController().signal)) events.push(event);
    expect(events.map((e) => e.event.case)).toEqual(["started", "policyEvaluated", terminal]);
    expect(events[1]?.event.value).toMatchObject({ allowed, constitutionHash: "h1" });
    expect(events.map((e) => e.sequence)).toEqual([...events.map((e) => e.sequence)].sort((a, b) => Number(a - b)));
  });

  it("answers a repeated Get of a closed session, and a Watch of a session recently read, without describing it again, still per caller: the token to its owner only, nothing to another tenant", async () => {
    const owner = { authenticated: true, tenant: "tenant-demo", user: "user-demo" } as const;
    const { workflowId } = await sessions.start(input("ran-cached"), owner);
    const token = { token: "raw.jwt.value", tokenType: "Bearer", expiresIn: "900", claims: { sub: "user-demo", tenantId: "tenant-demo" } };
    await createTaskDriver(connection).completeWorkflowTask(async (encode) => [
      {
        commandType: CommandType.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION,
        completeWorkflowExecutionCommandAttributes: { result: await encode({ sessionId: "ran-cached", policy: policy(true), token, auditEventId: "audit-2" }) },
      },
    ]);
    const cachedGets = async () =>
      (await registry.getSingleMetric("somagent_temporal_calls_total")?.get())?.values.find(
        (v) => v.labels.operation === "describe" && v.labels.outcome === "cached",
      )?.value ?? 0;

    const first = await sessions.describe(workflowId, owner);
    expect(first.result?.token?.token).toBe("raw.jwt.value");
    const before = await cachedGets();
    const again = await sessions.describe(workflowId, owner);
    expect(await cachedGets()).toBe(before + 1);
    expect(again).toEqual(first);
    const colleague = await sessions.describe(workflowId, { ...owner, user: "user-colleague" });
    expect(colleague.result?.token).toMatchObject({ token: "", tokenType: "Bearer", claims: { sub: "user-demo" } });
    // The colleague's copy had its token withheld; the owner's next answer still carries it.
    expect((await sessions.describe(workflowId, owner)).result?.token?.token).toBe("raw.jwt.value");
    await expect(sessions.describe(workflowId, { ...owner, tenant: "tenant-other" })).rejects.toBeInstanceOf(SessionNotFoundError);
    await expect(sessions.describe(workflowId, ANONYMOUS_CALLER)).resolves.toMatchObject({ status: SessionStatus.COMPLETED });
    expect(await cachedGets()).toBe(before + 5);

    // Watch reuses the owner read by Get, with the same rules.
    const ownWatch = await collect(sessions.watch(workflowId, 0n, owner, new AbortController().signal));
    const colleagueWatch = await collect(sessions.watch(workflowId, 0n, { ...owner, user: "user-colleague" }, new AbortController().signal));
    await expect(collect(sessions.watch(workflowId, 0n, { ...owner, tenant: "tenant-other" }, new AbortController().signal))).rejects.toBeInstanceOf(
      SessionNotFoundError,
    );
    expect(await cachedGets()).toBe(before + 8);
    expect(ownWatch.at(-1)?.event).toMatchObject({ case: "completed", value: { token: { token: "raw.jwt.value" } } });
    expect(colleagueWatch.at(-1)?.event).toMatchObject({ case: "completed", value: { token: { token: "", tokenType: "Bearer" } } });
  });

  it("maps a failed session to FAILED with the root cause's message", async () => {
    const { workflowId } = await sessions.start(input("ran-failed"), ANONYMOUS_CALLER);
    await createTaskDriver(connection).completeWorkflowTask(async () => [
      {
        commandType: CommandType.COMMAND_TYPE_FAIL_WORKFLOW_EXECUTION,
        failWorkflowExecutionCommandAttributes: {
          failure: { message: "Activity task failed", cause: { message: "policy-engine: answered 500", applicationFailureInfo: { type: "TransientCallError" } } },
        },
      },
    ]);
    const got = await sessions.describe(workflowId, ANONYMOUS_CALLER);
    expect(got).toMatchObject({ status: SessionStatus.FAILED, failure: "policy-engine: answered 500" });
    const events: WatchResponse[] = [];
    for await (const event of sessions.watch(workflowId, 0n, ANONYMOUS_CALLER, new AbortController().signal)) events.push(event);
    expect(events.at(-1)?.event).toMatchObject({ case: "failed", value: { reason: "policy-engine: answered 500" } });
  });
});
