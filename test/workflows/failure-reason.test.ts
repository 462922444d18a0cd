import { ActivityFailure, ApplicationFailure, TimeoutFailure } from "@temporalio/common";
import { describe, expect, it } from "vitest";
import { stepFailureReason, withoutAddresses } from "../../src/workflows/failure-reason.js";

describe("withoutAddresses", () => {
  it.each([
    ["policy-engine: unreachable (ECONNREFUSED)", "policy-engine: unreachable (ECONNREFUSED)"],
    ['identity-service: answered 403: user lacks the capability "session:start"', 'identity-service: answered 403: user lacks the capability "session:start"'],
    ["ray-serve: answered 502: upstream http://10.0.3.7:8000/somagent-slm failed", "ray-serve: answered 502: upstream <internal address> failed"],
    ["request to https://policy.internal.example/v1/evaluate?x=1 timed out", "request to <internal address> timed out"],
    ["connect ECONNREFUSED 127.0.0.1:9092", "connect ECONNREFUSED <internal address>"],
    ["connect ECONNREFUSED [::1]:8101", "connect ECONNREFUSED <internal address>"],
    ["broker kafka-0.kafka.svc.cluster.local:9093 is down", "broker <internal address> is down"],
    ["no answer within 5000 ms", "no answer within 5000 ms"],
    ["policy-engine: answered 413: body must be at most 65536 bytes", "policy-engine: answered 413: body must be at most 65536 bytes"],
  ])("shows %j as %j", (text, shown) => {
    expect(withoutAddresses(text)).toBe(shown);
  });
});

describe("stepFailureReason", () => {
  const activityFailure = (retryState: ConstructorParameters<typeof ActivityFailure>[3], cause: Error) =>
    new ActivityFailure("activity failed", "run-slm-completion", "5", retryState, "worker", cause);

  it("calls a non-retryable application failure a refusal, with its message", () => {
    const refusal = ApplicationFailure.nonRetryable("ray-serve: answered 400: prompt is empty", "PermanentCallError");
    expect(stepFailureReason("Ray Serve", activityFailure("NON_RETRYABLE_FAILURE", refusal))).toBe(
      "Ray Serve refused: ray-serve: answered 400: prompt is empty",
    );
  });

  it("calls a budget spent between attempts unreachable, with the last attempt's error", () => {
    const last = ApplicationFailure.retryable("ray-serve: unreachable (ECONNREFUSED 127.0.0.1:8000)", "TransientCallError");
    const timeout = new TimeoutFailure("activity ScheduleToClose timeout", undefined, "SCHEDULE_TO_CLOSE");
    Object.assign(timeout, { cause: last });
    expect(stepFailureReason("Ray Serve", activityFailure("TIMEOUT", timeout))).toBe(
      "Ray Serve unreachable after its retry budget: ray-serve: unreachable (ECONNREFUSED <internal address>)",
    );
  });

  // Seen in the fault suite (scenario 4b): the budget ran out during an attempt and Temporal reported
  // NON_RETRYABLE_FAILURE with a bare timeout; the session was said to be refused by Ray.
  it("never calls a timeout a refusal, whatever the retry state", () => {
    const timeout = new TimeoutFailure("activity ScheduleToClose timeout", undefined, "SCHEDULE_TO_CLOSE");
    expect(stepFailureReason("Ray Serve", activityFailure("NON_RETRYABLE_FAILURE", timeout))).toBe(
      "Ray Serve unreachable after its retry budget: activity ScheduleToClose timeout",
    );
  });
});
