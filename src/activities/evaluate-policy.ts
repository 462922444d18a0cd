import { Context } from "@temporalio/activity";
import type { PolicyDecisionResult, SessionInput } from "../workflows/contract.js";
import type { ActivityDeps } from "./deps.js";
import { withPermanentFailures } from "./permanent-failure.js";

/** Builds `evaluate-policy`: asks the policy engine for its verdict on the session's prompt. */
export function createEvaluatePolicy(deps: ActivityDeps) {
  return (input: SessionInput): Promise<PolicyDecisionResult> => {
    const role = typeof input.metadata.role === "string" && input.metadata.role !== "" ? input.metadata.role : "user";
    return withPermanentFailures(() =>
      deps.policy.evaluate(
        {
          session_id: input.sessionId,
          tenant: input.tenant,
          user: input.user,
          role,
          prompt: input.prompt,
          metadata: input.metadata,
        },
        Context.current().cancellationSignal,
      ),
    );
  };
}
