import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SessionStatus, type WatchResponse } from "../../gen/somagent/orchestrator/v1/session_pb.js";
import { SessionNotFoundError } from "../../src/temporal/errors.js";
import { DEFAULT_MODEL, SESSION_WORKFLOW_TYPE, type SessionInput } from "../../src/workflows/contract.js";
import { startApiFixture, waitFor, type ApiFixture } from "../api/api-fixture.js";

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
    const first = await fixture.sessions.start(input("port-idem"));
    const second = await fixture.sessions.start(input("port-idem"));
    expect(first.workflowId).toBe("session-port-idem");
    expect(second.runId).toBe(first.runId);
    const description = await fixture.connection.client.workflow.getHandle("session-port-idem").describe();
    expect(description.type).toBe(SESSION_WORKFLOW_TYPE);
    expect(description.taskQueue).toBe(fixture.connection.taskQueue);
    const query = `WorkflowId = "session-port-idem"`;
    await waitFor(async () => (await fixture.connection.client.workflow.count(query)).count > 0);
    expect((await fixture.connection.client.workflow.count(query)).count).toBe(1);
  });

  it("stores the workflow input encrypted in Temporal's history", async () => {
    await fixture.sessions.start(input("port-encrypted"));
    const history = await fixture.connection.connection.workflowService.getWorkflowExecutionHistory({
      namespace: "default",
      execution: { workflowId: "session-port-encrypted" },
    });
    const payload = history.history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
    expect(new TextDecoder().decode(payload?.metadata?.encoding ?? new Uint8Array())).toBe("binary/encrypted");
    expect(Buffer.from(payload?.data ?? []).toString("latin1")).not.toContain("kick off a demo");
  });

  it("describes a running session, and a terminated one with its close time", async () => {
    await fixture.sessions.start(input("port-describe"));
    const running = await fixture.sessions.describe("session-port-describe");
    expect(running.status).toBe(SessionStatus.RUNNING);
    expect(running.historyLength).toBeGreaterThanOrEqual(2n);
    await fixture.connection.client.workflow.getHandle("session-port-describe").terminate("test over");
    const terminated = await fixture.sessions.describe("session-port-describe");
    expect(terminated.status).toBe(SessionStatus.TERMINATED);
    expect(terminated.closeTime).toBeDefined();
  });

  it("throws SessionNotFoundError for an unknown workflow, on describe and on watch", async () => {
    await expect(fixture.sessions.describe("session-never-started")).rejects.toBeInstanceOf(SessionNotFoundError);
    await expect(collect(fixture.sessions.watch("session-never-started", 0n, new AbortController().signal))).rejects.toBeInstanceOf(
      SessionNotFoundError,
    );
  });

  it("streams events as history grows (long-poll), ends after the terminal event, and resumes without gap or duplicate", async () => {
    await fixture.sessions.start(input("port-watch"));
    const seen: WatchResponse[] = [];
    const streaming = (async () => {
      for await (const event of fixture.sessions.watch("session-port-watch", 0n, new AbortController().signal)) seen.push(event);
    })();
    await waitFor(() => seen.length === 1);
    expect(seen[0]?.event.case).toBe("started");
    await fixture.connection.client.workflow.getHandle("session-port-watch").terminate("operator stop");
    await streaming;
    expect(seen.map((e) => e.event.case)).toEqual(["started", "failed"]);
    expect(seen[1]?.event.value).toMatchObject({ reason: "terminated: operator stop" });

    const replay = await collect(fixture.sessions.watch("session-port-watch", 0n, new AbortController().signal));
    expect(replay.map((e) => e.sequence)).toEqual(seen.map((e) => e.sequence));
    const resumed = await collect(fixture.sessions.watch("session-port-watch", seen[0]!.sequence, new AbortController().signal));
    expect(resumed.map((e) => e.sequence)).toEqual([seen[1]!.sequence]);
    const afterEnd = await collect(fixture.sessions.watch("session-port-watch", seen[1]!.sequence, new AbortController().signal));
    expect(afterEnd).toEqual([]);
  });

  it("ends a watch quietly when its signal aborts", async () => {
    await fixture.sessions.start(input("port-abort"));
    const controller = new AbortController();
    const seen: WatchResponse[] = [];
    const streaming = (async () => {
      for await (const event of fixture.sessions.watch("session-port-abort", 0n, controller.signal)) seen.push(event);
    })();
    await waitFor(() => seen.length === 1);
    controller.abort();
    await streaming;
    expect(seen.map((e) => e.event.case)).toEqual(["started"]);
  });
});
