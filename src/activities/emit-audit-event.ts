import { createHash } from "node:crypto";
import { ApplicationFailure, Context } from "@temporalio/activity";
import type { AuditEventJson } from "../../gen/somagent/orchestrator/v1/session_pb.js";
import type { AuditEmitResult, AuditOutcome, AuditRequest } from "../workflows/contract.js";
import { withPermanentFailures } from "./permanent-failure.js";

const STATUS = {
  accepted: "AUDIT_STATUS_ACCEPTED",
  rejected: "AUDIT_STATUS_REJECTED",
  failed: "AUDIT_STATUS_FAILED",
  canceled: "AUDIT_STATUS_CANCELED",
} as const;

/**
 * A UUID-shaped id from sha256(workflow id, run id, outcome): the same for every
 * attempt of the same audit, so consumers can de-duplicate a retried publish.
 */
export function auditId(workflowId: string, runId: string, outcome: AuditOutcome): string {
  const hex = createHash("sha256").update(`${workflowId}\n${runId}\n${outcome}`).digest("hex");
  const variant = ((parseInt(hex.slice(16, 18), 16) & 0x3f) | 0x80).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${variant}${hex.slice(18, 20)}-${hex.slice(20, 32)}`;
}

/** Builds the audit event for one session end; holds no prompt and no token. */
export function buildAuditEvent(request: AuditRequest, workflowId: string, runId: string, now: Date): AuditEventJson {
  const event: AuditEventJson = {
    auditId: auditId(workflowId, runId, request.outcome),
    sessionId: request.input.sessionId,
    workflowId,
    runId,
    tenant: request.input.tenant,
    user: request.input.user,
    status: STATUS[request.outcome],
    model: request.input.model,
    emittedAt: now.toISOString(),
  };
  if (request.policy) event.policy = request.policy;
  if (request.tokenClaims) event.tokenClaims = request.tokenClaims;
  if (request.reason) event.reason = request.reason;
  return event;
}

/** What `emit-audit-event` needs: a durable sink for audit events. */
export interface EmitAuditEventDeps {
  audit: {
    /** Publishes one event keyed by its session id; throws TransientCallError when the sink is unavailable. */
    publish(event: AuditEventJson): Promise<void>;
  };
}

/** Builds `emit-audit-event`: publishes the session's one terminal audit event. */
export function createEmitAuditEvent(deps: EmitAuditEventDeps) {
  return async (request: AuditRequest): Promise<AuditEmitResult> => {
    const execution = Context.current().info.workflowExecution;
    // Only the session workflow schedules this activity, so the execution is always there.
    if (!execution) throw ApplicationFailure.nonRetryable("emit-audit-event runs only inside a workflow");
    const { workflowId, runId } = execution;
    const event = buildAuditEvent(request, workflowId, runId, new Date());
    await withPermanentFailures(() => deps.audit.publish(event));
    return { auditId: event.auditId, status: event.status };
  };
}
