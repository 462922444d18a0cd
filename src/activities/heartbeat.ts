import { Context } from "@temporalio/activity";

/** How often a long call says it is alive; the SDK sends at most one heartbeat per 80 % of the activity's heartbeat timeout. */
const HEARTBEAT_INTERVAL_MS = 1_000;

/**
 * Runs an activity's long call while heartbeating: a cancellation of the
 * activity reaches the worker only in a heartbeat's answer (then
 * `Context.current().cancellationSignal` aborts the call), and a worker that
 * stops heartbeating is noticed before the attempt's own timeout.
 */
export async function withHeartbeats<T>(call: () => Promise<T>): Promise<T> {
  const context = Context.current();
  const timer = setInterval(() => context.heartbeat(), HEARTBEAT_INTERVAL_MS);
  try {
    return await call();
  } finally {
    clearInterval(timer);
  }
}
