/**
 * What a call to a companion says about the session it is for, so the
 * companion's log lines name it as the worker's do: the session and its
 * workflow in two headers of ours, and the trace in W3C's `traceparent`
 * (https://www.w3.org/TR/trace-context/#traceparent-header), which the
 * worker's tracing sends.
 */
import type { IncomingHttpHeaders } from "node:http";

/** The session's id (`metadata.session_id`), percent-encoded. */
export const SESSION_ID_HEADER = "somagent-session-id";
/** The session's workflow id, percent-encoded. */
export const WORKFLOW_ID_HEADER = "somagent-workflow-id";

/** The session a call is for. */
export interface SessionRef {
  sessionId: string;
  workflowId: string;
}

/** The fields naming a session in a log line; each present only when the request carried it. */
export interface SessionLogFields {
  session_id?: string;
  workflow_id?: string;
  trace_id?: string;
}

/** Longest id read back from a header, in characters (a workflow id's limit at Temporal's defaults is 1,000). */
const MAX_ID_LENGTH = 1000;

/** version-traceid-parentid-flags; a later version may append fields after a `-`. */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}(-.*)?$/;

/**
 * The headers naming `session`. Percent-encoded, because a workflow started
 * at Temporal directly may have any characters in its id and a header value
 * may not.
 */
export function sessionHeaders(session: SessionRef): Record<string, string> {
  return { [SESSION_ID_HEADER]: encodeURIComponent(session.sessionId), [WORKFLOW_ID_HEADER]: encodeURIComponent(session.workflowId) };
}

/**
 * The log fields of an incoming request: `session_id` and `workflow_id` from
 * {@link sessionHeaders}, `trace_id` from a valid `traceparent`. A header
 * that is malformed, too long or repeated is left out, never an error: it
 * names the request in logs and decides nothing.
 */
export function sessionLogFields(headers: IncomingHttpHeaders): SessionLogFields {
  const fields: SessionLogFields = {};
  const sessionId = headerId(headers[SESSION_ID_HEADER]);
  if (sessionId !== undefined) fields.session_id = sessionId;
  const workflowId = headerId(headers[WORKFLOW_ID_HEADER]);
  if (workflowId !== undefined) fields.workflow_id = workflowId;
  const traceId = traceIdOf(headers.traceparent);
  if (traceId !== undefined) fields.trace_id = traceId;
  return fields;
}

function headerId(value: string | string[] | undefined): string | undefined {
  // Node joins a repeated header's values with ", ", which the encoding never writes.
  if (typeof value !== "string" || value === "" || value.includes(",")) return undefined;
  try {
    const id = decodeURIComponent(value);
    return id.length <= MAX_ID_LENGTH ? id : undefined;
  } catch {
    return undefined;
  }
}

/** The trace id of a `traceparent` (W3C Trace Context §3.2: version `ff` and all-zero ids are invalid; version 00 has no more fields). */
function traceIdOf(value: string | string[] | undefined): string | undefined {
  if (typeof value !== "string") return undefined;
  const match = TRACEPARENT.exec(value.trim());
  if (!match) return undefined;
  const [, version, traceId, parentId, rest] = match;
  if (version === "ff" || (version === "00" && rest !== undefined)) return undefined;
  if (/^0+$/.test(traceId as string) || /^0+$/.test(parentId as string)) return undefined;
  return traceId;
}
