import type { SessionTimeouts } from "../workflows/contract.js";

/** What `read-session-timeouts` needs: the worker's configured time limits. */
export interface ReadSessionTimeoutsDeps {
  sessionTimeouts: SessionTimeouts;
}

/**
 * Builds `read-session-timeouts`, a local activity: the workflow cannot read
 * the worker's configuration, so it asks once and Temporal records the answer
 * in the session's history (a replay, or a worker restarted with other
 * budgets, keeps the limits the session started with).
 */
export function createReadSessionTimeouts(deps: ReadSessionTimeoutsDeps) {
  return async (): Promise<SessionTimeouts> => deps.sessionTimeouts;
}
