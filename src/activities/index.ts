/**
 * The session workflow's activities, registered under the seed's names. Each
 * activity declares what it needs in its own terms; the worker wires the real
 * clients in, and TypeScript's structural types check the fit there.
 */
import { ACTIVITY } from "../workflows/contract.js";
import { createEmitAuditEvent, type EmitAuditEventDeps } from "./emit-audit-event.js";
import { createEvaluatePolicy, type EvaluatePolicyDeps } from "./evaluate-policy.js";
import { createIssueIdentityToken, type IssueIdentityTokenDeps } from "./issue-identity-token.js";
import { createReadSessionTimeouts, type ReadSessionTimeoutsDeps } from "./read-session-timeouts.js";
import { createRunSlmCompletion, type RunSlmCompletionDeps } from "./run-slm-completion.js";

export type { EmitAuditEventDeps } from "./emit-audit-event.js";
export type { EvaluatePolicyDeps, PolicyQuestion } from "./evaluate-policy.js";
export type { IssueIdentityTokenDeps, TokenGrant } from "./issue-identity-token.js";
export type { ReadSessionTimeoutsDeps } from "./read-session-timeouts.js";
export type { CompletionPrompt, RunSlmCompletionDeps } from "./run-slm-completion.js";

/** Everything `createActivities` needs: the union of what each activity declares. */
export type ActivityDeps = EvaluatePolicyDeps &
  IssueIdentityTokenDeps &
  RunSlmCompletionDeps &
  EmitAuditEventDeps &
  ReadSessionTimeoutsDeps;

/** Builds the activity map the worker registers; names are the seed's activity types. */
export function createActivities(deps: ActivityDeps) {
  return {
    [ACTIVITY.evaluatePolicy]: createEvaluatePolicy(deps),
    [ACTIVITY.issueIdentityToken]: createIssueIdentityToken(deps),
    [ACTIVITY.runSlmCompletion]: createRunSlmCompletion(deps),
    [ACTIVITY.emitAuditEvent]: createEmitAuditEvent(deps),
    [ACTIVITY.readSessionTimeouts]: createReadSessionTimeouts(deps),
  };
}
