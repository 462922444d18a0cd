/**
 * Workflow histories in the worker tests: what a session's activities did,
 * as the Temporal CLI shows them to an operator, and recorded as replay
 * fixtures (test/fixtures/histories/).
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import type { WorkflowHandle } from "@temporalio/client";
import proto from "@temporalio/proto";
import { infra } from "../support/infra.js";

/** The fixtures' codec key, so recorded histories can be replayed (see test/fixtures/histories/README.md). */
export const fixtureCodecKey = JSON.parse(readFileSync(new URL("../fixtures/histories/codec-key.json", import.meta.url), "utf8")) as {
  id: string;
  key: string;
};

/** The history as the run's Temporal CLI shows it (raw payloads, as an operator with server access sees them). */
export function cliHistory(workflowId: string): string {
  const { binary, address } = infra().temporal;
  return execFileSync(binary, ["workflow", "show", "--address", address, "--workflow-id", workflowId, "--output", "json"], { encoding: "utf8" });
}

/** With `RECORD_HISTORIES=1`, saves the run's history as a replay fixture named for its outcome. */
export async function recordHistory(handle: WorkflowHandle, outcome: string): Promise<void> {
  if (process.env.RECORD_HISTORIES !== "1") return;
  const history = await handle.fetchHistory();
  // Binary protobuf: historyToJSON's protobufjs root is not the one ESM loads, so JSON would not round-trip.
  writeFileSync(new URL(`../fixtures/histories/${outcome}.history.pb`, import.meta.url), proto.temporal.api.history.v1.History.encode(history).finish());
}

const EventType = proto.temporal.api.enums.v1.EventType;

/** Attempt numbers of the started activities of `activityType` (a retried activity records its last attempt). */
export async function startedAttempts(handle: WorkflowHandle, activityType: string): Promise<number[]> {
  const events = (await handle.fetchHistory()).events ?? [];
  const scheduled = new Map<string, string>();
  for (const event of events) {
    if (event.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) {
      scheduled.set(String(event.eventId), event.activityTaskScheduledEventAttributes?.activityType?.name ?? "");
    }
  }
  return events
    .filter((event) => event.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED)
    .filter((event) => scheduled.get(String(event.activityTaskStartedEventAttributes?.scheduledEventId)) === activityType)
    .map((event) => event.activityTaskStartedEventAttributes?.attempt ?? 0);
}

/** How the activity of `activityType` ended: its retry state, from the close event in the history. */
export async function closingRetryState(handle: WorkflowHandle, activityType: string): Promise<string | undefined> {
  const events = (await handle.fetchHistory()).events ?? [];
  const ids = new Set(
    events
      .filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === activityType)
      .map((e) => String(e.eventId)),
  );
  for (const event of events) {
    const closed = event.activityTaskFailedEventAttributes ?? event.activityTaskTimedOutEventAttributes;
    if (closed && ids.has(String(closed.scheduledEventId))) return proto.temporal.api.enums.v1.RetryState[closed.retryState ?? 0];
  }
  return undefined;
}
