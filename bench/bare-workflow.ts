/**
 * The floor of a whole session: a workflow of the same shape as
 * `session-start-workflow` (four sequential activities) whose activities do
 * nothing. Workflow code: deterministic, imports only @temporalio/workflow.
 */
import { proxyActivities } from "@temporalio/workflow";

/** The four no-op activities the bench's in-process worker registers. */
export interface NoOpActivities {
  first(): Promise<void>;
  second(): Promise<void>;
  third(): Promise<void>;
  fourth(): Promise<void>;
}

const steps = proxyActivities<NoOpActivities>({ startToCloseTimeout: "10 seconds" });

export async function bareSession(): Promise<void> {
  await steps.first();
  await steps.second();
  await steps.third();
  await steps.fourth();
}
