/**
 * The session workflow: policy → identity token → completion → one terminal
 * audit event. Deterministic; imports only the workflow SDK, shared types and
 * (type-only, erased from the bundle) the activities' signatures.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  isCancellation,
  patched,
  proxyActivities,
  proxyLocalActivities,
  upsertSearchAttributes,
  type ActivityOptions,
} from "@temporalio/workflow";
import type { TokenClaimsJson } from "../../gen/somagent/orchestrator/v1/session_pb.js";
import type { createActivities } from "../activities/index.js";
import {
  ACTIVITY,
  type AuditEmitResult,
  type AuditRequest,
  type PolicyDecisionResult,
  type RecordedSessionStatus,
  SEARCH_ATTRIBUTE,
  type SessionInput,
  type SessionTimeouts,
  type SessionWorkflowResult,
  type StepTimeouts,
} from "./contract.js";
import { stepFailureReason } from "./failure-reason.js";

/** The activities as the worker registers them: a renamed or retyped activity fails to compile here. */
type SessionActivities = ReturnType<typeof createActivities>;

/** Transient failures back off from 1 s to 10 s; permanent ones arrive non-retryable. */
const backoff = { initialInterval: "1s", backoffCoefficient: 2, maximumInterval: "10s" } as const;

/**
 * The limits of sessions whose history has no `read-session-timeouts` marker:
 * they started before the budgets came from the worker's configuration, with
 * these values fixed in code (the completion's attempt, given as 150 s, was
 * cut to its 120 s budget by Temporal).
 */
const TIMEOUTS_FIXED_IN_CODE: SessionTimeouts = {
  policy: { attemptMs: 15_000, budgetMs: 45_000 },
  identity: { attemptMs: 15_000, budgetMs: 45_000 },
  completion: { attemptMs: 120_000, budgetMs: 120_000 },
  audit: { attemptMs: 30_000, budgetMs: 300_000 },
};

/** Marks histories whose limits were read from the worker; those without it replay with {@link TIMEOUTS_FIXED_IN_CODE}. */
const SESSION_TIMEOUTS_PATCH = "session-timeouts-from-worker-config";

/**
 * The budgets reach the workflow through a local activity rather than the
 * workflow input: the worker that runs the calls owns their limits and checks
 * call ≤ attempt ≤ budget at start (src/config.ts), the API needs none of it,
 * and the answer is recorded in history, so a replay sees the same limits.
 */
const { [ACTIVITY.readSessionTimeouts]: readSessionTimeouts } = proxyLocalActivities<SessionActivities>({
  startToCloseTimeout: "5s",
});

async function sessionTimeouts(): Promise<SessionTimeouts> {
  return patched(SESSION_TIMEOUTS_PATCH) ? await readSessionTimeouts() : TIMEOUTS_FIXED_IN_CODE;
}

/**
 * Marks histories of sessions that handle cancellation (one canceled audit
 * event, then the workflow ends cancelled) and record their status in
 * {@link SEARCH_ATTRIBUTE.sessionStatus}; those without it replay as before.
 */
const SESSION_LIFECYCLE_PATCH = "session-cancel-and-status-search-attribute";

/**
 * The completion (Ray) is the one step that can run long: it heartbeats, so
 * a cancellation reaches it within this (and a lost worker is noticed).
 */
const COMPLETION_HEARTBEAT_TIMEOUT = "10s";

/** One step's activity options: transient failures are retried until its budget is spent. */
function stepOptions({ attemptMs, budgetMs }: StepTimeouts): ActivityOptions {
  return { startToCloseTimeout: attemptMs, scheduleToCloseTimeout: budgetMs, retry: backoff };
}

/** The session's activities with the limits it started with. */
function sessionActivities(timeouts: SessionTimeouts) {
  const { [ACTIVITY.evaluatePolicy]: evaluatePolicy } = proxyActivities<SessionActivities>(stepOptions(timeouts.policy));
  const { [ACTIVITY.issueIdentityToken]: issueIdentityToken } = proxyActivities<SessionActivities>(stepOptions(timeouts.identity));
  const { [ACTIVITY.runSlmCompletion]: runSlmCompletion } = proxyActivities<SessionActivities>({
    ...stepOptions(timeouts.completion),
    heartbeatTimeout: COMPLETION_HEARTBEAT_TIMEOUT,
  });
  const { [ACTIVITY.emitAuditEvent]: emitAuditEvent } = proxyActivities<SessionActivities>(stepOptions(timeouts.audit));
  return { evaluatePolicy, issueIdentityToken, runSlmCompletion, emitAuditEvent };
}

/** Names the outside service in a failure message, as an operator would look for it. */
const SERVICE = {
  [ACTIVITY.evaluatePolicy]: "policy engine",
  [ACTIVITY.issueIdentityToken]: "identity service",
  [ACTIVITY.runSlmCompletion]: "Ray Serve",
  [ACTIVITY.emitAuditEvent]: "Kafka",
} as const;

/**
 * `session-start-workflow`: runs one agent session and returns its result.
 * Ends with exactly one audit event (accepted, rejected, failed or canceled);
 * fails with an ApplicationFailure naming the service and reason when a step
 * fails for good. A cancellation request (Cancel) cancels the step in
 * progress, starts no further step, emits the canceled audit event and ends
 * the workflow cancelled; an audit event already being emitted completes,
 * and the session ends as that event says.
 */
export async function sessionStartWorkflow(input: SessionInput): Promise<SessionWorkflowResult> {
  const lifecycle = patched(SESSION_LIFECYCLE_PATCH);
  // Cancellation-proof where the session must finish its record whatever happens: its limits and its one audit event.
  const uncancellable = <T>(fn: () => Promise<T>): Promise<T> => (lifecycle ? CancellationScope.nonCancellable(fn) : fn());
  const ended = <T>(status: RecordedSessionStatus, value: T): T => {
    if (lifecycle) upsertSearchAttributes([{ key: SEARCH_ATTRIBUTE.sessionStatus, value: status }]);
    return value;
  };
  const { evaluatePolicy, issueIdentityToken, runSlmCompletion, emitAuditEvent } = sessionActivities(await uncancellable(sessionTimeouts));
  const emitAudit = (request: AuditRequest) => uncancellable(() => emitAuditEvent(request));
  let step: keyof typeof SERVICE = ACTIVITY.evaluatePolicy;
  let policy: PolicyDecisionResult | undefined;
  let tokenClaims: TokenClaimsJson | undefined;
  try {
    policy = await evaluatePolicy(input);
    if (!policy.allowed) {
      step = ACTIVITY.emitAuditEvent;
      const audit = await emitAudit({
        input,
        outcome: "rejected",
        policy,
        reason: (policy.reasons ?? []).join("; ") || "denied by policy",
      });
      return ended("REJECTED", result(input, policy, audit));
    }
    step = ACTIVITY.issueIdentityToken;
    const token = await issueIdentityToken(input);
    tokenClaims = token.claims;
    step = ACTIVITY.runSlmCompletion;
    const completion = await runSlmCompletion(input);
    step = ACTIVITY.emitAuditEvent;
    const audit = await emitAudit({ input, outcome: "accepted", policy, tokenClaims });
    return ended("COMPLETED", { ...result(input, policy, audit), token, completion });
  } catch (error) {
    const canceled = lifecycle && isCancellation(error);
    if (!canceled && !(error instanceof ActivityFailure)) throw error;
    const reason = canceled ? `canceled while waiting for the ${SERVICE[step]}` : stepFailureReason(SERVICE[step], error);
    const request: AuditRequest = { input, outcome: canceled ? "canceled" : "failed", reason };
    if (policy) request.policy = policy;
    if (tokenClaims) request.tokenClaims = tokenClaims;
    await emitAudit(request);
    // Rethrowing the cancellation ends the workflow cancelled (Temporal's CANCELED status).
    if (canceled) throw ended("CANCELED", error);
    throw ended("FAILED", ApplicationFailure.create({ message: reason, type: "SessionFailed", nonRetryable: true }));
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
