/**
 * The failures a JSON HTTP handler throws to choose its answer; the error
 * writer of the service ({@link createJsonService}) turns them into
 * `{error, message}` with their status. Anything else is a 500 with an id.
 */

/** An answer other than 2xx: `{error: code, message}` with `status` and extra `headers`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "HttpError";
  }
}

/**
 * A value that is missing or has the wrong type or form; `field` is its path,
 * e.g. `rules[2].pattern`. Answered as 400 `invalid_request` with the message.
 */
export class FieldError extends Error {
  constructor(
    readonly field: string,
    problem: string,
  ) {
    super(`${field} ${problem}`);
    this.name = "FieldError";
  }
}
