import { defaultPayloadConverter } from "@temporalio/common";
import proto, { type temporal } from "@temporalio/proto";
import { describe, expect, it } from "vitest";
import { AuditStatus } from "../../gen/somagent/orchestrator/v1/session_pb.js";
import { createSessionEventState, isTerminalEvent, rootCauseMessage, toSessionEvent } from "../../src/temporal/session-events.js";
import { ACTIVITY, type SessionInput } from "../../src/workflows/contract.js";

const { EventType } = proto.temporal.api.enums.v1;
type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

const payloads = (value: unknown) => ({ payloads: [defaultPayloadConverter.toPayload(value)] });
const at = (eventId: number, eventType: number, fields: Partial<HistoryEvent>): HistoryEvent => ({
  eventId: eventId as never,
  eventType,
  eventTime: { seconds: (1_700_000_000 + eventId) as never, nanos: 0 },
  ...fields,
});

const input: SessionInput = {
  sessionId: "sess-1",
  tenant: "tenant-demo",
  user: "user-demo",
  prompt: "kick off a demo",
  model: "somagent-demo",
  metadata: { session_id: "sess-1" },
};
const policy = { allowed: true, score: 0, violations: [], reasons: [], constitutionHash: "abc", evaluatedAt: "2026-11-24T10:00:00Z" };
const token = {
  token: "eyJhbGciOi.secret.jwt",
  tokenType: "Bearer",
  expiresIn: "900",
  claims: { sub: "user-demo", tenantId: "tenant-demo", capabilities: ["session:run"], jti: "j-1", kid: "k-1" },
};
const completion = { text: "hello", model: "somagent-demo", provider: "builtin-deterministic", promptTokens: 3, completionTokens: 1 };

/** The history of a session that ran every step (workflow task events interleaved, as Temporal records them). */
function allowedHistory(): HistoryEvent[] {
  const activity = (scheduledId: number, name: string, result: unknown): HistoryEvent[] => [
    at(scheduledId, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, { activityTaskScheduledEventAttributes: { activityType: { name } } }),
    at(scheduledId + 1, EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED, {}),
    at(scheduledId + 2, EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, {
      activityTaskCompletedEventAttributes: { scheduledEventId: scheduledId as never, result: payloads(result) },
    }),
  ];
  return [
    at(1, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, { workflowExecutionStartedEventAttributes: { input: payloads(input) } }),
    at(2, EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, {}),
    at(3, EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED, {}),
    at(4, EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, {}),
    ...activity(5, ACTIVITY.evaluatePolicy, policy),
    ...activity(8, ACTIVITY.issueIdentityToken, token),
    ...activity(11, ACTIVITY.runSlmCompletion, completion),
    ...activity(14, ACTIVITY.emitAuditEvent, { auditId: "audit-1", status: "AUDIT_STATUS_ACCEPTED" }),
    at(17, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, {
      workflowExecutionCompletedEventAttributes: {
        result: payloads({ sessionId: "sess-1", policy, token, completion, auditEventId: "audit-1", completedAt: "2026-11-24T10:00:01Z" }),
      },
    }),
  ];
}

function mapAll(events: HistoryEvent[]) {
  const state = createSessionEventState();
  return events.flatMap((event) => toSessionEvent(event, state) ?? []);
}

describe("toSessionEvent", () => {
  it("maps a completed session's history to started, one event per activity and completed, sequenced by history event id", () => {
    const events = mapAll(allowedHistory());
    expect(events.map((e) => [e.sequence, e.event.case])).toEqual([
      [1n, "started"],
      [7n, "policyEvaluated"],
      [10n, "tokenIssued"],
      [13n, "completionGenerated"],
      [16n, "auditEmitted"],
      [17n, "completed"],
    ]);
    const [started, policyEvent, tokenEvent, completionEvent, auditEvent, completed] = events;
    expect(started?.event.value).toMatchObject({ sessionId: "sess-1", tenant: "tenant-demo", user: "user-demo", model: "somagent-demo" });
    expect(started?.time?.seconds).toBe(1_700_000_001n);
    expect(policyEvent?.event.value).toMatchObject({ allowed: true, constitutionHash: "abc" });
    expect(tokenEvent?.event.value).toMatchObject({ sub: "user-demo", tenantId: "tenant-demo", capabilities: ["session:run"], kid: "k-1" });
    expect(completionEvent?.event.value).toMatchObject({ text: "hello", promptTokens: 3, completionTokens: 1 });
    expect(auditEvent?.event.value).toMatchObject({ auditId: "audit-1", status: AuditStatus.ACCEPTED });
    expect(completed?.event.value).toMatchObject({ sessionId: "sess-1", auditEventId: "audit-1" });
    expect(completed && isTerminalEvent(completed)).toBe(true);
  });

  it("never carries the raw token: token_issued holds the claims only", () => {
    const tokenEvent = mapAll(allowedHistory()).find((e) => e.event.case === "tokenIssued");
    expect(JSON.stringify(tokenEvent, (_k, v) => (typeof v === "bigint" ? String(v) : v))).not.toContain("eyJhbGciOi");
  });

  it("ends a denied session with rejected", () => {
    const denied = { ...policy, allowed: false, reasons: ["prompt matched a blocked rule"] };
    const events = mapAll([
      at(1, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, { workflowExecutionStartedEventAttributes: { input: payloads(input) } }),
      at(5, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, { activityTaskScheduledEventAttributes: { activityType: { name: ACTIVITY.evaluatePolicy } } }),
      at(7, EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, { activityTaskCompletedEventAttributes: { scheduledEventId: 5 as never, result: payloads(denied) } }),
      at(11, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, {
        workflowExecutionCompletedEventAttributes: { result: payloads({ sessionId: "sess-1", policy: denied, auditEventId: "a" }) },
      }),
    ]);
    expect(events.map((e) => e.event.case)).toEqual(["started", "policyEvaluated", "rejected"]);
    expect(events[2]?.event.value).toMatchObject({ policy: { allowed: false, reasons: ["prompt matched a blocked rule"] } });
  });

  it("reports a failed workflow with the root cause's message", () => {
    const failure = { message: "Activity task failed", cause: { message: "policy-engine: answered 500", cause: { message: "connection reset" } } };
    const [event] = mapAll([at(9, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED, { workflowExecutionFailedEventAttributes: { failure } })]);
    expect(event?.event).toEqual({ case: "failed", value: expect.objectContaining({ reason: "connection reset" }) });
    expect(rootCauseMessage(failure)).toBe("connection reset");
  });

  it("reports terminated and timed-out workflows as failed with the reason", () => {
    const events = mapAll([
      at(3, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED, { workflowExecutionTerminatedEventAttributes: { reason: "operator" } }),
      at(5, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT, {}),
    ]);
    expect(events.map((e) => e.event.case === "failed" && e.event.value.reason)).toEqual(["terminated: operator", "timed out"]);
  });

  it("ends a cancelled session with a terminal canceled event naming the session and its canceled audit event", () => {
    const events = mapAll([
      at(1, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, { workflowExecutionStartedEventAttributes: { input: payloads(input) } }),
      at(5, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, { activityTaskScheduledEventAttributes: { activityType: { name: ACTIVITY.emitAuditEvent } } }),
      at(7, EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, {
        activityTaskCompletedEventAttributes: { scheduledEventId: 5 as never, result: payloads({ auditId: "audit-c", status: "AUDIT_STATUS_CANCELED" }) },
      }),
      at(11, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED, {}),
    ]);
    expect(events.map((e) => e.event.case)).toEqual(["started", "auditEmitted", "canceled"]);
    expect(events[1]?.event.value).toMatchObject({ auditId: "audit-c", status: AuditStatus.CANCELED });
    expect(events[2]?.event.value).toMatchObject({ sessionId: "sess-1", auditEventId: "audit-c" });
    expect(events[2] && isTerminalEvent(events[2])).toBe(true);
  });

  it("ignores workflow-task events, activity scheduling and completions of unknown activities", () => {
    const events = mapAll([
      at(2, EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, {}),
      at(5, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, { activityTaskScheduledEventAttributes: { activityType: { name: "something-else" } } }),
      at(7, EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, { activityTaskCompletedEventAttributes: { scheduledEventId: 5 as never, result: payloads({}) } }),
      at(8, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED, {}),
    ]);
    expect(events).toEqual([]);
  });
});
