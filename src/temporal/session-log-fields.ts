import { SESSION_WORKFLOW_ID_PREFIX } from "../workflows/contract.js";

/**
 * The log fields naming a session, from its workflow id: `workflow_id`, and
 * `session_id` when the workflow is a session (`session-{session_id}`).
 */
export function sessionLogFields(workflowId: string): { workflow_id: string; session_id?: string } {
  return workflowId.startsWith(SESSION_WORKFLOW_ID_PREFIX)
    ? { workflow_id: workflowId, session_id: workflowId.slice(SESSION_WORKFLOW_ID_PREFIX.length) }
    : { workflow_id: workflowId };
}
