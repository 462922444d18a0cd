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
  /** The caller's free-form metadata (JSON object), without its credentials ({@link CREDENTIAL_METADATA_KEYS}). */
  metadata: Record<string, unknown>;
  /** The session and its workflow, for the engine's log lines. */
  session?: { sessionId: string; workflowId: string };
}

/**
 * Metadata keys that carry a credential for another step (`mfa_code` is for
 * the identity service): never sent to the policy engine, which has no use
 * for them and should not hold them.
 */
export const CREDENTIAL_METADATA_KEYS: readonly string[] = ["mfa_code"];

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
    const run = Context.current().info.workflowExecution;
    return withPermanentFailures(() =>
      deps.policy.evaluate(
        {
          sessionId: input.sessionId,
          tenant: input.tenant,
          user: input.user,
          role,
          prompt: input.prompt,
          metadata: Object.fromEntries(Object.entries(input.metadata).filter(([key]) => !CREDENTIAL_METADATA_KEYS.includes(key))),
          ...(run === undefined ? {} : { session: { sessionId: input.sessionId, workflowId: run.workflowId } }),
        },
        Context.current().cancellationSignal,
      ),
    );
  };
}
