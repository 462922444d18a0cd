import { Context } from "@temporalio/activity";
import type { IdentityTokenResult, SessionInput } from "../workflows/contract.js";
import type { ActivityDeps, TokenIssueRequest } from "./deps.js";
import { withPermanentFailures } from "./permanent-failure.js";

/** The capability every session's token must carry. */
export const SESSION_CAPABILITY = "session:start";

/** Builds `issue-identity-token`: a verified token with `session:start` for the session's user. */
export function createIssueIdentityToken(deps: ActivityDeps) {
  return (input: SessionInput): Promise<IdentityTokenResult> => {
    const request: TokenIssueRequest = {
      user_id: input.user,
      tenant_id: input.tenant,
      capabilities: [SESSION_CAPABILITY],
    };
    if (typeof input.metadata.mfa_code === "string") request.mfa_code = input.metadata.mfa_code;
    return withPermanentFailures(() => deps.identity.issue(request, Context.current().cancellationSignal));
  };
}
