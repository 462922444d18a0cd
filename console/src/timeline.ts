/**
 * Session events as the console shows them: one line per Watch event, with
 * its sequence (the resume point), its kind and a short human summary.
 */
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { AuditStatus, type WatchResponse } from "../../gen/somagent/orchestrator/v1/session_pb.js";

/** One line of a session's timeline; plain JSON, so it can be kept in sessionStorage. */
export interface TimelineEntry {
  /** The event's sequence, decimal (an int64 on the wire). */
  sequence: string;
  /** The event's oneof case, e.g. `policyEvaluated`. */
  kind: string;
  /** When the event happened, ISO 8601; empty when the event carries no time. */
  time: string;
  summary: string;
}

/** The timeline line of one Watch event. */
export function timelineEntry(event: WatchResponse): TimelineEntry {
  return {
    sequence: event.sequence.toString(),
    kind: event.event.case ?? "unknown",
    time: event.time ? timestampDate(event.time).toISOString() : "",
    summary: summary(event.event),
  };
}

/** `AUDIT_STATUS_ACCEPTED` → `accepted`: an enum value's name without its prefix. */
export function enumLabel(names: Record<number, string>, value: number, prefix: string): string {
  return (names[value] ?? String(value)).replace(prefix, "").toLowerCase().replace(/_/g, " ");
}

function summary(event: WatchResponse["event"]): string {
  switch (event.case) {
    case "started":
      return `tenant ${event.value.tenant}, user ${event.value.user}, model ${event.value.model}`;
    case "policyEvaluated": {
      const verdict = event.value.allowed ? "allowed" : "denied";
      const reasons = event.value.reasons.length > 0 ? `: ${event.value.reasons.join("; ")}` : "";
      return `${verdict} (score ${event.value.score})${reasons}`;
    }
    case "tokenIssued":
      return `for ${event.value.sub} of ${event.value.tenantId}, capabilities ${event.value.capabilities.join(", ") || "none"}`;
    case "completionGenerated":
      return `${event.value.completionTokens} tokens from ${event.value.model} (${event.value.provider})`;
    case "auditEmitted":
      return `audit ${event.value.auditId}: ${enumLabel(AuditStatus, event.value.status, "AUDIT_STATUS_")}`;
    case "completed":
      return "the session completed";
    case "rejected":
      return `rejected: ${event.value.policy?.reasons.join("; ") || "the policy denied the session"}`;
    case "failed":
      return `failed: ${event.value.reason}`;
    case "canceled":
      return event.value.auditEventId === "" ? "canceled" : `canceled, audit ${event.value.auditEventId}`;
    case undefined:
      return "an event this console does not know";
  }
}
