import { Context } from "@temporalio/activity";
import type { PolicyDecisionResult, SessionInput } from "../workflows/contract.js";
import { withPermanentFailures } from "./permanent-failure.js";

/**
 * The question `evaluate-policy` asks: may this user, in this role, send this
 * prompt? The policy engine client's request has the same shape on purpose:
 * each side owns its type, and the worker's wiring checks that they fit.
 */
export interface PolicyQuestion {
  sessionId: string;
  tenant: string;
  user: string;
  /** The caller's role from `metadata.role`; `user` when it names none. */
  role: string;
  prompt: string;
  /** The caller's free-form metadata (JSON object). */
  metadata: Record<string, unknown>;
}

/** What `evaluate-policy` needs: a policy engine that answers with a decision (a denial is a decision, not an error). */
export interface EvaluatePolicyDeps {
  policy: {
    /** Throws TransientCallError when the engine may answer later, PermanentCallError when it never will. */
    evaluate(question: PolicyQuestion, signal?: AbortSignal): Promise<PolicyDecisionResult>;
  };
}

/** Builds `evaluate-policy`: asks the policy engine for its verdict on the session's prompt. */
export function createEvaluatePolicy(deps: EvaluatePolicyDeps) {
  return (input: SessionInput): Promise<PolicyDecisionResult> => {
    const role = typeof input.metadata.role === "string" && input.metadata.role !== "" ? input.metadata.role : "user";
    return withPermanentFailures(() =>
      deps.policy.evaluate(
        {
          sessionId: input.sessionId,
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
