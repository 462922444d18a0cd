/** The session headers the worker's clients send and the companions read back into log fields. */
import { describe, expect, it } from "vitest";
import { SESSION_ID_HEADER, WORKFLOW_ID_HEADER, sessionHeaders, sessionLogFields } from "../../src/shared/http/session-headers.js";

const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID = "00f067aa0ba902b7";

describe("sessionHeaders and sessionLogFields", () => {
  it("carry any workflow id through a header and back", () => {
    const ref = { sessionId: "sess-1", workflowId: "session-sess-1/ü ✓\r\nX-Injected: 1" };
    const headers = sessionHeaders(ref);
    for (const value of Object.values(headers)) expect(value).toMatch(/^[\x21-\x7e]+$/);
    expect(sessionLogFields(headers)).toEqual({ session_id: ref.sessionId, workflow_id: ref.workflowId });
  });

  it.each([
    ["version 00", `00-${TRACE_ID}-${PARENT_ID}-01`, TRACE_ID],
    ["unsampled", `00-${TRACE_ID}-${PARENT_ID}-00`, TRACE_ID],
    ["a later version with more fields", `01-${TRACE_ID}-${PARENT_ID}-01-extra`, TRACE_ID],
    ["version ff", `ff-${TRACE_ID}-${PARENT_ID}-01`, undefined],
    ["version 00 with more fields", `00-${TRACE_ID}-${PARENT_ID}-01-extra`, undefined],
    ["an all-zero trace id", `00-${"0".repeat(32)}-${PARENT_ID}-01`, undefined],
    ["an all-zero parent id", `00-${TRACE_ID}-${"0".repeat(16)}-01`, undefined],
    ["upper-case hex", `00-${TRACE_ID.toUpperCase()}-${PARENT_ID}-01`, undefined],
    ["a short trace id", `00-${TRACE_ID.slice(1)}-${PARENT_ID}-01`, undefined],
    ["two headers joined", `00-${TRACE_ID}-${PARENT_ID}-01, 00-${TRACE_ID}-${PARENT_ID}-01`, undefined],
  ])("reads trace_id from a traceparent: %s", (_, traceparent, traceId) => {
    expect(sessionLogFields({ traceparent }).trace_id).toBe(traceId);
  });

  it("leaves out ids that are malformed, repeated or too long", () => {
    expect(sessionLogFields({ [SESSION_ID_HEADER]: "%E0%A4%A", [WORKFLOW_ID_HEADER]: "a, b" })).toEqual({});
    expect(sessionLogFields({ [WORKFLOW_ID_HEADER]: "w".repeat(1001) })).toEqual({});
    expect(sessionLogFields({})).toEqual({});
  });
});
