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

/**
 * Temporal refused the call for load (RESOURCE_EXHAUSTED: a rate limit, the
 * namespace's concurrent long-poll limit): the same call may succeed later.
 */
export class TemporalOverloadedError extends Error {
  constructor(operation: string, reason: string, options?: ErrorOptions) {
    super(`Temporal is over its limits (${operation}: ${reason}); retry later`, options);
    this.name = "TemporalOverloadedError";
  }
}

/** The call's deadline passed before Temporal answered. */
export class TemporalDeadlineError extends Error {
  constructor(operation: string, options?: ErrorOptions) {
    super(`Temporal did not answer ${operation} before the deadline`, options);
    this.name = "TemporalDeadlineError";
  }
}

/**
 * The session id is taken by a session the caller does not own (another
 * tenant's or user's, or a workflow that is not a session). Carries no data
 * of the existing workflow.
 */
export class SessionAlreadyExistsError extends Error {
  constructor(readonly workflowId: string) {
    super(`session ${workflowId} already exists; choose another metadata.session_id`);
    this.name = "SessionAlreadyExistsError";
  }
}

/** A request names a tenant or user other than the authenticated caller's. */
export class CallerMismatchError extends Error {
  constructor(readonly field: "tenant" | "user") {
    super(`${field} must be the caller's own ${field}, as its bearer token names it`);
    this.name = "CallerMismatchError";
  }
}

/** Cancel of a session that has already finished otherwise; names its status. */
export class SessionFinishedError extends Error {
  constructor(
    readonly workflowId: string,
    readonly status: string,
  ) {
    super(`session ${workflowId} has already finished as ${status}: only a running session can be cancelled`);
    this.name = "SessionFinishedError";
  }
}

/** A request field the port cannot use as given (e.g. a page token from other filters); names the field. */
export class InvalidFieldError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = "InvalidFieldError";
  }
}
