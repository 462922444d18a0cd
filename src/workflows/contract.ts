/**
 * The names and shapes shared by the API, the worker and other SomaAgent
 * components: the workflow type, its activities and their payloads. Imported
 * by workflow code, so it holds types and constants only.
 */
import type {
  AuditEventJson,
  CompletionJson,
  IdentityTokenJson,
  PolicyDecisionJson,
  SessionResultJson,
  TokenClaimsJson,
} from "../../gen/somagent/orchestrator/v1/session_pb.js";

/** Workflow type name, as the seed names it. */
export const SESSION_WORKFLOW_TYPE = "session-start-workflow";

/** Activity type names, as the seed names them. */
export const ACTIVITY = {
  evaluatePolicy: "evaluate-policy",
  issueIdentityToken: "issue-identity-token",
  runSlmCompletion: "run-slm-completion",
  emitAuditEvent: "emit-audit-event",
  /** Local activity: the worker's {@link SessionTimeouts}, read once when a session starts. */
  readSessionTimeouts: "read-session-timeouts",
} as const;

/** Model used when a request names none. */
export const DEFAULT_MODEL = "somagent-demo";

/** Prefix of every session's workflow id: `session-{session_id}`. */
export const SESSION_WORKFLOW_ID_PREFIX = "session-";

/** The workflow's single argument. */
export interface SessionInput {
  sessionId: string;
  tenant: string;
  user: string;
  prompt: string;
  model: string;
  /** The caller's free-form metadata (JSON object). */
  metadata: Record<string, unknown>;
}

/** What each activity returns: the proto JSON shape of its message. */
export type PolicyDecisionResult = PolicyDecisionJson;
export type IdentityTokenResult = IdentityTokenJson;
export type CompletionResult = CompletionJson;
export type AuditEmitResult = Pick<AuditEventJson, "auditId" | "status">;

/** The workflow's result: proto JSON of `SessionResult`. */
export type SessionWorkflowResult = SessionResultJson;

/** How a session ended, as its one terminal audit event says. */
export type AuditOutcome = "accepted" | "rejected" | "failed" | "canceled";

/**
 * Custom search attributes of session workflows, which List queries, as
 * search attribute keys of the Temporal SDK. The Temporal server must have
 * them registered (`local/temporal.ts` does for the dev server; the README
 * tells cluster operators). Start sets all three.
 */
export const SEARCH_ATTRIBUTE = {
  /** The session's tenant. */
  tenant: { name: "SomaTenant", type: "KEYWORD" },
  /** True when the tenant came from a verified bearer token (SessionOwner.authenticated in src/temporal/session-port.ts). */
  tenantVerified: { name: "SomaTenantVerified", type: "BOOL" },
  /** A {@link RecordedSessionStatus}: RUNNING at start, upserted by the workflow when the session ends. */
  sessionStatus: { name: "SomaSessionStatus", type: "KEYWORD" },
} as const;

/** The session statuses the workflow records in {@link SEARCH_ATTRIBUTE.sessionStatus} (SessionStatus names without their prefix). */
export type RecordedSessionStatus = "RUNNING" | "COMPLETED" | "REJECTED" | "FAILED" | "CANCELED";

/** The `emit-audit-event` argument: what the workflow knows when the session ends. */
export interface AuditRequest {
  input: SessionInput;
  outcome: AuditOutcome;
  policy?: PolicyDecisionResult;
  /** Claims of the issued token: never the token itself. */
  tokenClaims?: TokenClaimsJson;
  reason?: string;
}

/** One session step's time limits, in milliseconds. */
export interface StepTimeouts {
  /** One attempt (Temporal's start-to-close): the step's own call limits plus a margin. */
  attemptMs: number;
  /** Every attempt and backoff together (Temporal's schedule-to-close): the step's retry budget. */
  budgetMs: number;
}

/** The time limits of the session workflow's four steps, from the worker's configuration (`*_RETRY_BUDGET_MS`). */
export interface SessionTimeouts {
  policy: StepTimeouts;
  identity: StepTimeouts;
  completion: StepTimeouts;
  audit: StepTimeouts;
}
