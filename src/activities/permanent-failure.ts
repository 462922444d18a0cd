import { ApplicationFailure } from "@temporalio/activity";
import { PermanentCallError } from "../shared/call-errors.js";

/**
 * Runs one outside call for an activity: a {@link PermanentCallError} becomes a
 * non-retryable failure carrying its message, so the session ends with a clear
 * reason instead of retrying; anything else is rethrown for Temporal's retry policy.
 */
export async function withPermanentFailures<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof PermanentCallError) {
      throw ApplicationFailure.nonRetryable(error.message, "PermanentCallError");
    }
    throw error;
  }
}
