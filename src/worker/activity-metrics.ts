/**
 * Activity latency, outcomes and retries by activity, measured once for
 * every activity (local ones included) by an inbound interceptor, so no
 * activity carries its own timing code.
 */
import type { Context } from "@temporalio/activity";
import { ApplicationFailure } from "@temporalio/common";
import type { ActivityInterceptorsFactory } from "@temporalio/worker";
import { Counter, Histogram } from "prom-client";
import type { Registry } from "../shared/metrics.js";

/** How one attempt of an activity ended. */
export type ActivityOutcome = "completed" | "failed" | "failed_non_retryable" | "cancelled";

/**
 * Registers `somagent_activity_duration_seconds{activity,outcome}` (its `_count`
 * is the attempts by outcome) and `somagent_activity_retries_total{activity}` on
 * `registry`, and returns the interceptor factory that feeds them. Throws when
 * they are already registered there: one worker per registry.
 */
export function createActivityMetricsInterceptor(registry: Registry): ActivityInterceptorsFactory {
  const duration = new Histogram({
    name: "somagent_activity_duration_seconds",
    help: "Duration of activity attempts, by activity type and outcome (completed, failed: retried while the retry policy allows, failed_non_retryable, cancelled); _count is the attempts.",
    labelNames: ["activity", "outcome"] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers: [registry],
  });
  const retries = new Counter({
    name: "somagent_activity_retries_total",
    help: "Activity attempts after the first (Temporal retried the activity), by activity type.",
    labelNames: ["activity"] as const,
    registers: [registry],
  });
  return (context: Context) => ({
    inbound: {
      async execute(input, next) {
        const { activityType: activity, attempt } = context.info;
        if (attempt > 1) retries.inc({ activity });
        const stop = duration.startTimer({ activity });
        try {
          const result = await next(input);
          stop({ outcome: "completed" });
          return result;
        } catch (error) {
          stop({ outcome: failureOutcome(error, context.cancellationSignal) });
          throw error;
        }
      },
    },
  });
}

/** The outcome of an attempt that threw `error`. */
function failureOutcome(error: unknown, cancellation: AbortSignal): ActivityOutcome {
  if (cancellation.aborted) return "cancelled";
  return error instanceof ApplicationFailure && error.nonRetryable ? "failed_non_retryable" : "failed";
}
