/**
 * Failures of calls to the outside world, split by what a retry can do about
 * them: the vocabulary clients throw and activities read, so it lives in the
 * kernel both may use. Activities turn {@link PermanentCallError} into a
 * non-retryable Temporal failure and let {@link TransientCallError} be retried.
 */

/** A failed call to `target` (its label in errors and metrics), with the HTTP status when there was an answer. */
export abstract class CallError extends Error {
  constructor(
    readonly target: string,
    message: string,
    readonly status?: number,
    options?: ErrorOptions,
  ) {
    super(`${target}: ${message}`, options);
    this.name = new.target.name;
  }

  /** The message without its `target: ` prefix, to nest one message in another. */
  get detail(): string {
    const prefix = `${this.target}: `;
    return this.message.startsWith(prefix) ? this.message.slice(prefix.length) : this.message;
  }
}

/** A failure that may pass on retry: connection refused, timeout, 5xx, 429. */
export class TransientCallError extends CallError {}

/** A failure a retry cannot fix: a 4xx contract error, a refusal, a malformed answer. */
export class PermanentCallError extends CallError {}

/** Statuses worth retrying: the server may answer differently later. */
export function isTransientStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}
