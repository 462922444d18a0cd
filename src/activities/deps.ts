/**
 * What the activities need from the outside world. The worker wires the real
 * clients (policy engine, identity service, Ray Serve, Kafka) into these once.
 */
import type { AuditEventJson } from "../../gen/somagent/orchestrator/v1/session_pb.js";
import type { CompletionRequest } from "../clients/ray-serve.js";
import type { CompletionResult, IdentityTokenResult, PolicyDecisionResult } from "../workflows/contract.js";

/** The policy engine's request body, exactly as its contract names the fields. */
export interface PolicyEvaluationRequest {
  session_id: string;
  tenant: string;
  user: string;
  role: string;
  prompt: string;
  metadata: Record<string, unknown>;
}

/** The identity service's request body. */
export interface TokenIssueRequest {
  user_id: string;
  tenant_id: string;
  capabilities: string[];
  mfa_code?: string;
}

/** Everything `createActivities` needs; each call throws TransientCallError or PermanentCallError. */
export interface ActivityDeps {
  policy: { evaluate(request: PolicyEvaluationRequest, signal?: AbortSignal): Promise<PolicyDecisionResult> };
  /** Issues a token and verifies it against the service's JWKS before returning it. */
  identity: { issue(request: TokenIssueRequest, signal?: AbortSignal): Promise<IdentityTokenResult> };
  completions: { complete(request: CompletionRequest, signal?: AbortSignal): Promise<CompletionResult> };
  /** Publishes one audit event (proto JSON, proto field names) keyed by its session id. */
  audit: { publish(event: AuditEventJson): Promise<void> };
}
