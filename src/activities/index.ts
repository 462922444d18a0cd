/** The session workflow's activities, registered under the seed's names. */
import { ACTIVITY } from "../workflows/contract.js";
import type { ActivityDeps } from "./deps.js";
import { createEmitAuditEvent } from "./emit-audit-event.js";
import { createEvaluatePolicy } from "./evaluate-policy.js";
import { createIssueIdentityToken } from "./issue-identity-token.js";
import { createRunSlmCompletion } from "./run-slm-completion.js";

export type { ActivityDeps } from "./deps.js";

/** Builds the activity map the worker registers; names are the seed's activity types. */
export function createActivities(deps: ActivityDeps) {
  return {
    [ACTIVITY.evaluatePolicy]: createEvaluatePolicy(deps),
    [ACTIVITY.issueIdentityToken]: createIssueIdentityToken(deps),
    [ACTIVITY.runSlmCompletion]: createRunSlmCompletion(deps),
    [ACTIVITY.emitAuditEvent]: createEmitAuditEvent(deps),
  };
}
