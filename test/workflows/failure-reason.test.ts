import { describe, expect, it } from "vitest";
import { withoutAddresses } from "../../src/workflows/failure-reason.js";

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
