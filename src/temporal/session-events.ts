/**
 * The pure mapping from a session workflow's history events to the typed
 * session events of `WatchResponse`. Kept free of I/O so it can be tested on
 * histories alone; payloads must already be decrypted (plain JSON payloads).
 */
import { create, fromJson, type DescMessage, type JsonValue } from "@bufbuild/protobuf";
import { timestampFromMs, type Timestamp } from "@bufbuild/protobuf/wkt";
import { defaultPayloadConverter, type Payload } from "@temporalio/common";
import proto, { type temporal } from "@temporalio/proto";
import {
  AuditEmittedSchema,
  CompletionSchema,
  PolicyDecisionSchema,
  SessionCanceledSchema,
  SessionResultSchema,
  SessionStartedSchema,
  SessionStatus,
  TokenClaimsSchema,
  WatchResponseSchema,
  type SessionResult,
  type WatchResponse,
} from "../../gen/somagent/orchestrator/v1/session_pb.js";
import { ACTIVITY, type AuditEmitResult, type IdentityTokenResult, type SessionInput } from "../workflows/contract.js";

// @temporalio/proto is CommonJS without static named exports, so Node's ESM loader needs the default import.
const { api } = proto.temporal;

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;
type Failure = temporal.api.failure.v1.IFailure;
const EventType = api.enums.v1.EventType;

/**
 * What the mapping remembers between events: the activity type of each
 * scheduled activity, and the session id and audit id a `canceled` event names.
 */
export interface SessionEventState {
  activityTypes: Map<string, string>;
  sessionId: string;
  auditId: string;
}

/** A fresh state, for reading a history from its first event. */
export function createSessionEventState(): SessionEventState {
  return { activityTypes: new Map(), sessionId: "", auditId: "" };
}

/** Extra fields in a stored payload never break a stream: they are ignored. */
const READ = { ignoreUnknownFields: true } as const;

/**
 * Maps one history event to a session event, or `undefined` for events that
 * are not session progress (workflow tasks, scheduling, signals...). Events
 * must be fed in history order, each once, so `state` learns activity types
 * from `ActivityTaskScheduled` before their completions arrive.
 * `sequence` is the history event id. Throws when a payload is not JSON.
 */
export function toSessionEvent(event: HistoryEvent, state: SessionEventState): WatchResponse | undefined {
  const sequence = BigInt(String(event.eventId ?? 0));
  const base = { sequence, time: eventTime(event) };
  const at = <D extends DescMessage>(c: string, schema: D, json: unknown) =>
    create(WatchResponseSchema, { ...base, event: { case: c, value: fromJson(schema, json as JsonValue, READ) } as never });

  switch (event.eventType) {
    case EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED: {
      const input = firstPayload<SessionInput>(event.workflowExecutionStartedEventAttributes?.input?.payloads);
      state.sessionId = input?.sessionId ?? "";
      return at("started", SessionStartedSchema, {
        sessionId: input?.sessionId ?? "",
        tenant: input?.tenant ?? "",
        user: input?.user ?? "",
        model: input?.model ?? "",
      });
    }
    case EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED: {
      const type = event.activityTaskScheduledEventAttributes?.activityType?.name;
      if (type) state.activityTypes.set(String(event.eventId), type);
      return undefined;
    }
    case EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: {
      const attributes = event.activityTaskCompletedEventAttributes;
      const type = state.activityTypes.get(String(attributes?.scheduledEventId ?? ""));
      const result = firstPayload<unknown>(attributes?.result?.payloads);
      switch (type) {
        case ACTIVITY.evaluatePolicy:
          return at("policyEvaluated", PolicyDecisionSchema, result);
        case ACTIVITY.issueIdentityToken:
          // Only the claims: the raw token never leaves the workflow's history.
          return at("tokenIssued", TokenClaimsSchema, (result as IdentityTokenResult | undefined)?.claims ?? {});
        case ACTIVITY.runSlmCompletion:
          return at("completionGenerated", CompletionSchema, result);
        case ACTIVITY.emitAuditEvent: {
          const audit = result as AuditEmitResult | undefined;
          state.auditId = audit?.auditId ?? "";
          return at("auditEmitted", AuditEmittedSchema, { auditId: audit?.auditId ?? "", status: audit?.status ?? "AUDIT_STATUS_UNSPECIFIED" });
        }
        default:
          return undefined;
      }
    }
    case EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED: {
      const result = sessionResult(firstPayload<unknown>(event.workflowExecutionCompletedEventAttributes?.result?.payloads));
      return create(WatchResponseSchema, {
        ...base,
        event: { case: isPolicyRejection(result) ? "rejected" : "completed", value: result },
      });
    }
    case EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
      return failed(base, rootCauseMessage(event.workflowExecutionFailedEventAttributes?.failure) ?? "workflow failed");
    case EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: {
      const reason = event.workflowExecutionTerminatedEventAttributes?.reason;
      return failed(base, reason ? `terminated: ${reason}` : "terminated");
    }
    case EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED:
      return at("canceled", SessionCanceledSchema, { sessionId: state.sessionId, auditEventId: state.auditId });
    case EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT:
      return failed(base, "timed out");
    default:
      return undefined;
  }
}

/** True for the events after which a workflow run has no more history. */
export function isTerminalEvent(event: WatchResponse): boolean {
  const c = event.event.case;
  return c === "completed" || c === "rejected" || c === "failed" || c === "canceled";
}

/** Parses a workflow result (proto JSON of `SessionResult`). */
export function sessionResult(json: unknown): SessionResult {
  return fromJson(SessionResultSchema, (json ?? {}) as JsonValue, READ);
}

/**
 * True when a completed session was rejected: the policy decided and said no.
 * The one place this rule is written; a result without a decision is not a rejection.
 */
export function isPolicyRejection(result: SessionResult): boolean {
  return result.policy?.allowed === false;
}

/** The status of a closed session, from its workflow's outcome. */
export function closedStatus(result: SessionResult): SessionStatus {
  return isPolicyRejection(result) ? SessionStatus.REJECTED : SessionStatus.COMPLETED;
}

/** The message of the innermost cause: the failure that started the chain. */
export function rootCauseMessage(failure: Failure | null | undefined): string | undefined {
  let current = failure;
  while (current?.cause) current = current.cause;
  return current?.message ?? undefined;
}

function failed(base: { sequence: bigint; time: Timestamp | undefined }, reason: string): WatchResponse {
  return create(WatchResponseSchema, { ...base, event: { case: "failed", value: { reason } } });
}

function firstPayload<T>(payloads: temporal.api.common.v1.IPayload[] | null | undefined): T | undefined {
  const payload = payloads?.[0];
  return payload ? defaultPayloadConverter.fromPayload<T>(payload as Payload) : undefined;
}

function eventTime(event: HistoryEvent): Timestamp | undefined {
  const time = event.eventTime;
  if (!time) return undefined;
  return timestampFromMs(Number(time.seconds ?? 0) * 1000 + Math.floor((time.nanos ?? 0) / 1e6));
}
