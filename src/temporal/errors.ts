/**
 * Failures of the session port that callers must tell apart. The API's one
 * error mapper (`src/api/errors.ts`) turns each into its status code.
 */

/** No workflow with this id exists in the namespace. */
export class SessionNotFoundError extends Error {
  constructor(readonly workflowId: string) {
    super(`session ${workflowId} not found`);
    this.name = "SessionNotFoundError";
  }
}

/** Temporal could not be reached (connection refused, unavailable, no answer). */
export class TemporalUnavailableError extends Error {
  constructor(operation: string, options?: ErrorOptions) {
    super(`Temporal is unreachable (${operation}); try again later`, options);
    this.name = "TemporalUnavailableError";
  }
}

/** The call's deadline passed before Temporal answered. */
export class TemporalDeadlineError extends Error {
  constructor(operation: string, options?: ErrorOptions) {
    super(`Temporal did not answer ${operation} before the deadline`, options);
    this.name = "TemporalDeadlineError";
  }
}
