/**
 * The `evaluate-policy` side of the policy engine: posts the session to
 * `POST /v1/evaluate` and maps the snake_case answer to `PolicyDecision` proto JSON.
 */
import type { PolicyViolationJson } from "../../gen/somagent/orchestrator/v1/session_pb.js";
import type { ActivityDeps } from "../activities/deps.js";
import type { PolicyDecisionResult } from "../workflows/contract.js";
import { PermanentCallError } from "../shared/call-errors.js";
import { isRecord, requestJson } from "./http-json.js";

/** Metric and error label of calls to the policy engine. */
export const POLICY_ENGINE_TARGET = "policy-engine";

/** Where the policy engine is and how long one call may take. */
export interface PolicyEngineClientOptions {
  /** The evaluate endpoint itself, e.g. `http://127.0.0.1:8101/v1/evaluate` (`POLICY_ENGINE_URL`). */
  url: URL | string;
  timeoutMs: number;
}

/**
 * Builds the client. `evaluate` throws `TransientCallError` when the
 * engine is unreachable, slow or answers 5xx, and {@link PermanentCallError}
 * when it rejects the request (4xx, its message names the field) or answers
 * something that is not a decision. A denial is a decision, not an error.
 */
export function createPolicyEngineClient(options: PolicyEngineClientOptions): ActivityDeps["policy"] {
  return {
    async evaluate(request, signal) {
      const { body } = await requestJson({
        target: POLICY_ENGINE_TARGET,
        url: options.url,
        method: "POST",
        body: request,
        timeoutMs: options.timeoutMs,
        signal,
      });
      return parseDecision(body);
    },
  };
}

function parseDecision(body: unknown): PolicyDecisionResult {
  const fail = (field: string): never => {
    throw new PermanentCallError(POLICY_ENGINE_TARGET, `answered a decision without a valid ${field}`);
  };
  if (!isRecord(body)) return fail("JSON object");
  const str = (record: Record<string, unknown>, field: string, at = field): string =>
    typeof record[field] === "string" ? (record[field] as string) : fail(at);
  const num = (record: Record<string, unknown>, field: string, at = field): number => {
    const value = record[field];
    return typeof value === "number" && Number.isFinite(value) ? value : fail(at);
  };
  if (typeof body.allowed !== "boolean") return fail("allowed");
  if (!Array.isArray(body.violations)) return fail("violations");
  if (!Array.isArray(body.reasons) || !body.reasons.every((r) => typeof r === "string")) return fail("reasons");
  const evaluatedAt = str(body, "evaluated_at");
  if (Number.isNaN(Date.parse(evaluatedAt))) return fail("evaluated_at");
  const violations = body.violations.map((item: unknown, index): PolicyViolationJson => {
    const at = `violations[${index}]`;
    if (!isRecord(item)) return fail(at);
    return {
      name: str(item, "name", `${at}.name`),
      pattern: str(item, "pattern", `${at}.pattern`),
      weight: num(item, "weight", `${at}.weight`),
      severity: str(item, "severity", `${at}.severity`),
      description: str(item, "description", `${at}.description`),
      excerpt: str(item, "excerpt", `${at}.excerpt`),
    };
  });
  return {
    allowed: body.allowed,
    score: num(body, "score"),
    violations,
    reasons: body.reasons as string[],
    constitutionHash: str(body, "constitution_hash"),
    evaluatedAt: new Date(evaluatedAt).toISOString(),
  };
}
