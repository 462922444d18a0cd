/**
 * List's terms in Temporal's: the visibility query for a tenant's sessions,
 * the page token handed to callers, and a listed execution as a
 * `SessionSummary`. Pure functions; the session port makes the calls.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampFromMs, type Timestamp } from "@bufbuild/protobuf/wkt";
import { defaultPayloadConverter, type Payload } from "@temporalio/common";
import proto, { type temporal } from "@temporalio/proto";
import { SessionStatus, SessionSummarySchema, type ListRequest, type SessionSummary } from "../../gen/somagent/orchestrator/v1/session_pb.js";
import { SEARCH_ATTRIBUTE, SESSION_WORKFLOW_ID_PREFIX, SESSION_WORKFLOW_TYPE } from "../workflows/contract.js";
import { InvalidFieldError } from "./errors.js";

// @temporalio/proto is CommonJS without static named exports, so Node's ESM loader needs the default import.
const ExecutionStatus = proto.temporal.api.enums.v1.WorkflowExecutionStatus;

/** Sessions per page when the request names no size, and the most served. */
export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 100;

/** The page size to ask Temporal for: 0 means the default, larger than the cap means the cap (AIP-158). */
export function pageSize(requested: number): number {
  return requested === 0 ? DEFAULT_PAGE_SIZE : Math.min(requested, MAX_PAGE_SIZE);
}

/**
 * The form tenants have when a session can be started for them (StartRequest's
 * rule); it also keeps them safe to quote in a visibility query. A token's
 * tenant of another form owns no session.
 */
const TENANT_FORM = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** True when sessions can exist for `tenant`, so it may be put into a query. */
export function isListableTenant(tenant: string): boolean {
  return TENANT_FORM.test(tenant);
}

/**
 * What each SessionStatus filter asks of visibility: Temporal's own execution
 * status, and for a completed workflow the status the workflow recorded
 * (COMPLETED or REJECTED). {@link summaryStatus} reads them back the same way.
 */
const STATUS_CLAUSE: Record<SessionStatus, string> = {
  [SessionStatus.UNSPECIFIED]: "",
  [SessionStatus.RUNNING]: "ExecutionStatus = 'Running'",
  [SessionStatus.COMPLETED]: `(ExecutionStatus = 'Completed' AND ${SEARCH_ATTRIBUTE.sessionStatus.name} = 'COMPLETED')`,
  [SessionStatus.REJECTED]: `(ExecutionStatus = 'Completed' AND ${SEARCH_ATTRIBUTE.sessionStatus.name} = 'REJECTED')`,
  [SessionStatus.FAILED]: "ExecutionStatus = 'Failed'",
  [SessionStatus.CANCELED]: "ExecutionStatus = 'Canceled'",
  [SessionStatus.TERMINATED]: "ExecutionStatus = 'Terminated'",
  [SessionStatus.TIMED_OUT]: "ExecutionStatus = 'TimedOut'",
};

/**
 * The visibility query of a List request for `tenant` (of the form
 * {@link isListableTenant} accepts); `verifiedOnly` keeps the sessions started
 * by authenticated callers, as Get shows an authenticated caller.
 */
export function visibilityQuery(tenant: string, verifiedOnly: boolean, request: ListRequest): string {
  if (!isListableTenant(tenant)) throw new Error(`tenant ${JSON.stringify(tenant)} cannot be queried`);
  const clauses = [`WorkflowType = '${SESSION_WORKFLOW_TYPE}'`, `${SEARCH_ATTRIBUTE.tenant.name} = '${tenant}'`];
  if (verifiedOnly) clauses.push(`${SEARCH_ATTRIBUTE.tenantVerified.name} = true`);
  if (request.statuses.length > 0) clauses.push(`(${request.statuses.map((status) => STATUS_CLAUSE[status]).join(" OR ")})`);
  if (request.startTimeFrom) clauses.push(`StartTime >= '${rfc3339(request.startTimeFrom)}'`);
  if (request.startTimeTo) clauses.push(`StartTime < '${rfc3339(request.startTimeTo)}'`);
  return clauses.join(" AND ");
}

function rfc3339(timestamp: Timestamp): string {
  const nanos = String(timestamp.nanos).padStart(9, "0");
  return timestampDate(timestamp).toISOString().replace(/\.\d{3}Z$/, `.${nanos}Z`);
}

/** Bytes of the check that binds a page token to its query. */
const CHECK_BYTES = 16;

function tokenCheck(query: string, temporalToken: Uint8Array): Buffer {
  return createHash("sha256").update("somagent list page\n").update(query).update("\n").update(temporalToken).digest().subarray(0, CHECK_BYTES);
}

/**
 * The opaque `next_page_token` for Temporal's token of `query`: base64url of a
 * check over the query and Temporal's token, then that token. It only
 * resumes the same query: the tenant and filters are in the query, so a token
 * cannot reach another tenant's sessions whatever is done to it.
 */
export function wrapPageToken(query: string, temporalToken: Uint8Array | null | undefined): string {
  if (!temporalToken?.length) return "";
  return Buffer.concat([tokenCheck(query, temporalToken), temporalToken]).toString("base64url");
}

/**
 * Temporal's token inside `pageToken`, which must come from a page of the same
 * `query`; `undefined` for the first page. Throws {@link InvalidFieldError}
 * naming `page_token` for a token altered or used with other filters.
 */
export function unwrapPageToken(query: string, pageToken: string): Uint8Array | undefined {
  if (pageToken === "") return undefined;
  const bytes = /^[A-Za-z0-9_-]+$/.test(pageToken) ? Buffer.from(pageToken, "base64url") : Buffer.alloc(0);
  const temporalToken = bytes.subarray(CHECK_BYTES);
  if (temporalToken.length === 0 || !timingSafeEqual(bytes.subarray(0, CHECK_BYTES), tokenCheck(query, temporalToken))) {
    throw new InvalidFieldError("page_token", "not a next_page_token of a List call with these filters; start again without page_token");
  }
  return temporalToken;
}

type ExecutionInfo = temporal.api.workflow.v1.IWorkflowExecutionInfo;

/** The listed session's memo values the summary shows, already decoded. */
export interface SummaryMemo {
  user: string;
  model: string;
}

/** A listed execution as the caller sees it: no token, no prompt. */
export function sessionSummary(execution: ExecutionInfo, memo: SummaryMemo): SessionSummary {
  const workflowId = execution.execution?.workflowId ?? "";
  return create(SessionSummarySchema, {
    workflowId,
    sessionId: workflowId.startsWith(SESSION_WORKFLOW_ID_PREFIX) ? workflowId.slice(SESSION_WORKFLOW_ID_PREFIX.length) : workflowId,
    user: memo.user,
    model: memo.model,
    status: summaryStatus(execution),
    startTime: protoTime(execution.startTime),
    closeTime: protoTime(execution.closeTime),
  });
}

function summaryStatus(execution: ExecutionInfo): SessionStatus {
  switch (execution.status) {
    case ExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING:
    case ExecutionStatus.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW:
      return SessionStatus.RUNNING;
    case ExecutionStatus.WORKFLOW_EXECUTION_STATUS_COMPLETED:
      return recordedStatus(execution) === "REJECTED" ? SessionStatus.REJECTED : SessionStatus.COMPLETED;
    case ExecutionStatus.WORKFLOW_EXECUTION_STATUS_FAILED:
      return SessionStatus.FAILED;
    case ExecutionStatus.WORKFLOW_EXECUTION_STATUS_CANCELED:
      return SessionStatus.CANCELED;
    case ExecutionStatus.WORKFLOW_EXECUTION_STATUS_TERMINATED:
      return SessionStatus.TERMINATED;
    case ExecutionStatus.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:
      return SessionStatus.TIMED_OUT;
    default:
      return SessionStatus.UNSPECIFIED;
  }
}

/** The workflow's recorded status; search attribute payloads are plain JSON (never encrypted), a value or a one-value list. */
function recordedStatus(execution: ExecutionInfo): unknown {
  const payload = execution.searchAttributes?.indexedFields?.[SEARCH_ATTRIBUTE.sessionStatus.name];
  if (!payload) return undefined;
  const value = defaultPayloadConverter.fromPayload<unknown>(payload as Payload);
  return Array.isArray(value) ? value[0] : value;
}

function protoTime(time: temporal.api.workflow.v1.IWorkflowExecutionInfo["startTime"]): Timestamp | undefined {
  if (!time) return undefined;
  return timestampFromMs(Number(time.seconds ?? 0) * 1000 + Math.floor((time.nanos ?? 0) / 1e6));
}
