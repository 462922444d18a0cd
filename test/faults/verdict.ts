/**
 * The verdict on one scenario's batch: each session's end (from the API), its
 * runs (from Temporal's visibility) and its records on the audit topic
 * (from Kafka), checked against what the scenario designs.
 */
import type { Connection } from "@temporalio/client";
import { SessionStatus } from "../../gen/somagent/orchestrator/v1/session_pb.js";
import type { SessionAudits } from "./audit-ledger.js";
import type { SessionEnd } from "./session-client.js";

/** How a scenario's sessions may end. */
export interface Design {
  /** Sessions may complete (an `accepted` audit). */
  completes: boolean;
  /** Sessions may fail with a reason matching this (a `failed` audit). */
  fails?: RegExp;
}

/** One session of a batch, as started and as it ended. */
export interface SessionOutcome {
  sessionId: string;
  workflowId: string;
  end: SessionEnd;
}

/** One row of the suite's table. */
export interface Row {
  scenario: string;
  sessions: number;
  completed: number;
  failedAsDesigned: number;
  /** Sessions whose history shows the fault: a step retried or a workflow task timed out or failed (informative). */
  retried: number;
  /** Sessions lost: still running when the batch was judged, or without a terminal audit on Kafka. */
  lost: number;
  /** Sessions that ended, with their audit, but not as the scenario designs (another status, a reason that does not match). */
  otherEnd: number;
  /** Sessions with two or more different `audit_id`s on Kafka. */
  duplicated: number;
  /** Extra deliveries of an `audit_id` already delivered (a retried publish): harmless, counted once. */
  redeliveries: number;
  /** Sessions with more than one workflow run (visibility) or audits from more than one run. */
  startedTwice: number;
  /** Audit records that carry a JWT or the session's issued token. */
  tokenLeaks: number;
  /** What went wrong, one line per session (empty when all is well). */
  problems: string[];
}

/** Three base64url segments, the first a JSON header (`{"` is `eyJ`): the shape of every JWT. */
const JWT_SHAPE = /eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/;

const AUDIT_STATUS = { completed: "AUDIT_STATUS_ACCEPTED", failed: "AUDIT_STATUS_FAILED" } as const;

/** Whether the session's history shows a step retried (attempt > 1) or a workflow task that timed out or failed. */
async function wasRetried(temporal: Connection, workflowId: string): Promise<boolean> {
  const { history } = await temporal.workflowService.getWorkflowExecutionHistory({ namespace: "default", execution: { workflowId } });
  return (history?.events ?? []).some(
    (event) =>
      (event.activityTaskStartedEventAttributes?.attempt ?? 1) > 1 ||
      event.workflowTaskTimedOutEventAttributes != null ||
      event.workflowTaskFailedEventAttributes != null,
  );
}

/** How many runs Temporal's visibility lists for `workflowId`. */
async function runCount(temporal: Connection, workflowId: string): Promise<number> {
  const page = await temporal.workflowService.listWorkflowExecutions({ namespace: "default", query: `WorkflowId = '${workflowId}'`, pageSize: 10 });
  return page.executions?.length ?? 0;
}

/** Judges every session of a batch against `design`. */
export async function judge(
  scenario: string,
  outcomes: SessionOutcome[],
  ledger: ReadonlyMap<string, SessionAudits>,
  temporal: Connection,
  design: Design,
): Promise<Row> {
  const row: Row = { scenario, sessions: outcomes.length, completed: 0, failedAsDesigned: 0, retried: 0, lost: 0, otherEnd: 0, duplicated: 0, redeliveries: 0, startedTwice: 0, tokenLeaks: 0, problems: [] };
  for (const { sessionId, workflowId, end } of outcomes) {
    const audits = ledger.get(sessionId);
    const distinct = [...(audits?.byAuditId.values() ?? [])];
    const runs = await runCount(temporal, workflowId);
    if (await wasRetried(temporal, workflowId)) row.retried += 1;
    const auditRuns = new Set(distinct.map((audit) => audit.runId));
    const problem = (text: string) => row.problems.push(`${sessionId}: ${text}`);

    const completed = design.completes && end.status === SessionStatus.COMPLETED && distinct[0]?.status === AUDIT_STATUS.completed;
    const failed = design.fails !== undefined && end.status === SessionStatus.FAILED && design.fails.test(end.failure) && distinct[0]?.status === AUDIT_STATUS.failed;
    const described = `status ${SessionStatus[end.status]}, failure "${end.failure}", audits [${distinct.map((a) => a.status).join(", ")}]`;
    if (end.status === SessionStatus.RUNNING || distinct.length === 0) {
      row.lost += 1;
      problem(`lost: ${described}`);
    } else if (completed) row.completed += 1;
    else if (failed) row.failedAsDesigned += 1;
    else {
      row.otherEnd += 1;
      problem(`not the designed end: ${described}`);
    }

    row.redeliveries += distinct.reduce((sum, audit) => sum + audit.deliveries - 1, 0);
    if (distinct.length > 1) {
      row.duplicated += 1;
      problem(`${distinct.length} different audit ids: ${[...(audits?.byAuditId.keys() ?? [])].join(", ")}`);
    }
    if (runs > 1 || auditRuns.size > 1) {
      row.startedTwice += 1;
      problem(`${runs} runs in Temporal, audits from ${auditRuns.size} runs`);
    }
    const leaks = (audits?.raw ?? []).filter((raw) => JWT_SHAPE.test(raw) || (end.token !== "" && raw.includes(end.token))).length;
    if (leaks > 0) {
      row.tokenLeaks += leaks;
      problem(`${leaks} audit records carry a token`);
    }
  }
  return row;
}

/** The table the suite prints: one line per scenario. */
export function formatTable(rows: readonly Row[]): string {
  const header = ["scenario", "sessions", "completed", "failed as designed", "with a retried step", "other end", "lost", "duplicated terminal audits", "started twice", "token in audit"];
  const lines = rows.map((r) => [r.scenario, r.sessions, r.completed, r.failedAsDesigned, r.retried, r.otherEnd, r.lost, r.duplicated, r.startedTwice, r.tokenLeaks].map(String));
  const widths = header.map((title, i) => Math.max(title.length, ...lines.map((line) => line[i]!.length)));
  const format = (cells: string[]) => `| ${cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join(" | ")} |`;
  return [format(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...lines.map(format)].join("\n");
}
