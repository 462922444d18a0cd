/**
 * The policy engine's client: posts a session to `POST /v1/evaluate` in the
 * engine's snake_case body and reads its answer into `PolicyDecision` proto JSON.
 */
import type { PolicyDecisionJson } from "../../gen/somagent/orchestrator/v1/session_pb.js";
import { sessionHeaders, type SessionRef } from "../shared/http/session-headers.js";
import { readAnswer } from "../shared/json-answer.js";
import type { Registry } from "../shared/metrics.js";
import { createRequestJson } from "./http-json.js";

/** Metric and error label of calls to the policy engine. */
export const POLICY_ENGINE_TARGET = "policy-engine";

/** Where the policy engine is and how long one call may take. */
export interface PolicyEngineClientOptions {
  /** The evaluate endpoint itself, e.g. `http://127.0.0.1:8101/v1/evaluate` (`POLICY_ENGINE_URL`). */
  url: URL | string;
  timeoutMs: number;
  /** Where the client's outbound-call metrics are registered. */
  registry: Registry;
}

/** One evaluation: who sends which prompt in which role. */
export interface PolicyEvaluationRequest {
  sessionId: string;
  tenant: string;
  user: string;
  role: string;
  prompt: string;
  /** Free-form JSON object, passed to the engine as is. */
  metadata: Record<string, unknown>;
  /** The session and workflow asking, sent as headers so the engine's log lines name them. */
  session?: SessionRef;
}

/** The policy engine as the worker sees it. */
export interface PolicyEngineClient {
  /**
   * Evaluates one request. Throws `TransientCallError` when the engine is
   * unreachable, slow or answers 5xx, and `PermanentCallError` when it rejects
   * the request (4xx, its message names the field) or answers something that
   * is not a decision. A denial is a decision, not an error.
   */
  evaluate(request: PolicyEvaluationRequest, signal?: AbortSignal): Promise<PolicyDecisionJson>;
}

/** Builds the client. */
export function createPolicyEngineClient(options: PolicyEngineClientOptions): PolicyEngineClient {
  const requestJson = createRequestJson(options.registry);
  return {
    async evaluate(request, signal) {
      const { body } = await requestJson({
        target: POLICY_ENGINE_TARGET,
        url: options.url,
        method: "POST",
        body: {
          session_id: request.sessionId,
          tenant: request.tenant,
          user: request.user,
          role: request.role,
          prompt: request.prompt,
          metadata: request.metadata,
        },
        ...(request.session === undefined ? {} : { headers: sessionHeaders(request.session) }),
        timeoutMs: options.timeoutMs,
        signal,
      });
      return readPolicyDecision(body);
    },
  };
}

/**
 * Reads the engine's answer (`allowed`, `score`, `violations`, `reasons`,
 * `constitution_hash`, `evaluated_at`) into `PolicyDecision` proto JSON;
 * throws `PermanentCallError` naming the first field that is missing or invalid.
 */
export function readPolicyDecision(body: unknown): PolicyDecisionJson {
  const answer = readAnswer(POLICY_ENGINE_TARGET, "a decision", body);
  const allowed = answer.boolean("allowed");
  const violations = answer.objects("violations").map((violation) => ({
    name: violation.string("name"),
    pattern: violation.string("pattern"),
    weight: violation.number("weight"),
    severity: violation.string("severity"),
    description: violation.string("description"),
    excerpt: violation.string("excerpt"),
  }));
  const reasons = answer.strings("reasons");
  const evaluatedAt = Date.parse(answer.string("evaluated_at"));
  if (Number.isNaN(evaluatedAt)) answer.fail("evaluated_at");
  return {
    allowed,
    score: answer.number("score"),
    violations,
    reasons,
    constitutionHash: answer.string("constitution_hash"),
    evaluatedAt: new Date(evaluatedAt).toISOString(),
  };
}
