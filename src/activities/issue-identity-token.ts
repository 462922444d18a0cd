import { Context } from "@temporalio/activity";
import type { IdentityTokenResult, SessionInput } from "../workflows/contract.js";
import { withPermanentFailures } from "./permanent-failure.js";

/** The capability every session's token must carry. */
export const SESSION_CAPABILITY = "session:start";

/** The token `issue-identity-token` asks for. */
export interface TokenGrant {
  userId: string;
  tenantId: string;
  capabilities: string[];
  /** The user's current TOTP code, from `metadata.mfa_code`, for users who need one. */
  mfaCode?: string;
  /**
   * The workflow run asking (`{workflowId}/{runId}`): a retry of this activity
   * presents the same code for the same session, and the service answers it
   * again instead of refusing the code as spent.
   */
  sessionId?: string;
  /** The session and its workflow, for the service's log lines. */
  session?: { sessionId: string; workflowId: string };
}

/** What `issue-identity-token` needs: an issuer whose tokens are verified before they are returned. */
export interface IssueIdentityTokenDeps {
  identity: {
    /** Throws TransientCallError when the service may answer later, PermanentCallError for a refusal or a token that does not verify. */
    issue(grant: TokenGrant, signal?: AbortSignal): Promise<IdentityTokenResult>;
  };
}

/** Builds `issue-identity-token`: a verified token with `session:start` for the session's user. */
export function createIssueIdentityToken(deps: IssueIdentityTokenDeps) {
  return (input: SessionInput): Promise<IdentityTokenResult> => {
    const run = Context.current().info.workflowExecution;
    const grant: TokenGrant = {
      userId: input.user,
      tenantId: input.tenant,
      capabilities: [SESSION_CAPABILITY],
    };
    if (run !== undefined) {
      grant.sessionId = `${run.workflowId}/${run.runId}`;
      grant.session = { sessionId: input.sessionId, workflowId: run.workflowId };
    }
    if (typeof input.metadata.mfa_code === "string") grant.mfaCode = input.metadata.mfa_code;
    return withPermanentFailures(() => deps.identity.issue(grant, Context.current().cancellationSignal));
  };
}
