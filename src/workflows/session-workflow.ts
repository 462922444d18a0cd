/**
 * The session workflow: policy → identity token → completion → one terminal
 * audit event. Deterministic; imports only the workflow SDK, shared types and
 * (type-only, erased from the bundle) the activities' signatures.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  proxyActivities,
  type ActivityOptions,
} from "@temporalio/workflow";
import type { TokenClaimsJson } from "../../gen/somagent/orchestrator/v1/session_pb.js";
import type { createActivities } from "../activities/index.js";
import {
  ACTIVITY,
  type AuditEmitResult,
  type AuditRequest,
  type PolicyDecisionResult,
  type SessionInput,
  type SessionWorkflowResult,
} from "./contract.js";
import { withoutAddresses } from "./failure-reason.js";

/** The activities as the worker registers them: a renamed or retyped activity fails to compile here. */
type SessionActivities = ReturnType<typeof createActivities>;

/** Transient failures back off from 1 s to 10 s; permanent ones arrive non-retryable. */
const backoff = { initialInterval: "1s", backoffCoefficient: 2, maximumInterval: "10s" } as const;

/** Each HTTP companion gets a bounded budget: a few attempts over about half a minute. */
const companionCall: ActivityOptions = {
  startToCloseTimeout: "15s",
  scheduleToCloseTimeout: "45s",
  retry: { ...backoff, maximumAttempts: 5 },
};

/**
 * Ray may be restarted under a session: retry for up to two minutes (so an
 * outage of 30-60 s is survived), each attempt long enough for a deployment.
 */
const completionCall: ActivityOptions = {
  startToCloseTimeout: "150s",
  scheduleToCloseTimeout: "120s",
  retry: backoff,
};

/** Kafka may be briefly unavailable; the audit must still be written. */
const auditCall: ActivityOptions = {
  startToCloseTimeout: "30s",
  scheduleToCloseTimeout: "5m",
  retry: backoff,
};

const { [ACTIVITY.evaluatePolicy]: evaluatePolicy, [ACTIVITY.issueIdentityToken]: issueIdentityToken } =
  proxyActivities<SessionActivities>(companionCall);
const { [ACTIVITY.runSlmCompletion]: runSlmCompletion } = proxyActivities<SessionActivities>(completionCall);
const { [ACTIVITY.emitAuditEvent]: emitAuditEvent } = proxyActivities<SessionActivities>(auditCall);

/** Names the outside service in a failure message, as an operator would look for it. */
const SERVICE = {
  [ACTIVITY.evaluatePolicy]: "policy engine",
  [ACTIVITY.issueIdentityToken]: "identity service",
  [ACTIVITY.runSlmCompletion]: "Ray Serve",
  [ACTIVITY.emitAuditEvent]: "Kafka",
} as const;

/** One step's failure as a sentence: refused (permanent) or unreachable (budget spent); no internal addresses. */
function failureReason(step: keyof typeof SERVICE, error: unknown): string {
  // The activity's own error is the first ApplicationFailure; a timeout wraps the last one.
  let cause: unknown = error;
  while (!(cause instanceof ApplicationFailure) && cause instanceof Error && cause.cause instanceof Error) cause = cause.cause;
  const detail = withoutAddresses(cause instanceof Error ? cause.message : String(cause));
  const refused = error instanceof ActivityFailure && error.retryState === "NON_RETRYABLE_FAILURE";
  return `${SERVICE[step]} ${refused ? "refused" : "unreachable after its retry budget"}: ${detail}`;
}

/**
 * `session-start-workflow`: runs one agent session and returns its result.
 * Ends with exactly one audit event (accepted, rejected or failed); fails with
 * an ApplicationFailure naming the service and reason when a step fails for good.
 */
export async function sessionStartWorkflow(input: SessionInput): Promise<SessionWorkflowResult> {
  let step: keyof typeof SERVICE = ACTIVITY.evaluatePolicy;
  let policy: PolicyDecisionResult | undefined;
  let tokenClaims: TokenClaimsJson | undefined;
  try {
    policy = await evaluatePolicy(input);
    if (!policy.allowed) {
      step = ACTIVITY.emitAuditEvent;
      const audit = await emitAuditEvent({
        input,
        outcome: "rejected",
        policy,
        reason: (policy.reasons ?? []).join("; ") || "denied by policy",
      });
      return result(input, policy, audit);
    }
    step = ACTIVITY.issueIdentityToken;
    const token = await issueIdentityToken(input);
    tokenClaims = token.claims;
    step = ACTIVITY.runSlmCompletion;
    const completion = await runSlmCompletion(input);
    step = ACTIVITY.emitAuditEvent;
    const audit = await emitAuditEvent({ input, outcome: "accepted", policy, tokenClaims });
    return { ...result(input, policy, audit), token, completion };
  } catch (error) {
    if (!(error instanceof ActivityFailure)) throw error;
    const reason = failureReason(step, error);
    const request: AuditRequest = { input, outcome: "failed", reason };
    if (policy) request.policy = policy;
    if (tokenClaims) request.tokenClaims = tokenClaims;
    await emitAuditEvent(request);
    throw ApplicationFailure.create({ message: reason, type: "SessionFailed", nonRetryable: true });
  }
}

function result(input: SessionInput, policy: PolicyDecisionResult, audit: AuditEmitResult): SessionWorkflowResult {
  return {
    sessionId: input.sessionId,
    policy,
    auditEventId: audit.auditId ?? "",
    // Workflow time is deterministic: the SDK replays Date from history.
    completedAt: new Date().toISOString(),
  };
}
