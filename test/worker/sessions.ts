/** Sessions as the worker tests start and read them, straight through a Temporal client. */
import { randomUUID } from "node:crypto";
import { WorkflowFailedError, type WorkflowHandle } from "@temporalio/client";
import { expect } from "vitest";
import type { SessionInput } from "../../src/workflows/contract.js";

/** A demo session's input with a fresh session id. */
export function sessionInput(overrides: Partial<SessionInput> = {}): SessionInput {
  return { sessionId: randomUUID(), tenant: "tenant-demo", user: "user-demo", prompt: "kick off a demo", model: "somagent-demo", metadata: {}, ...overrides };
}

/** The failure a session ended with (awaiting the result also lets a time-skipping server skip). */
export async function sessionFailure(handle: WorkflowHandle): Promise<WorkflowFailedError> {
  const error = await handle.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(WorkflowFailedError);
  return error as WorkflowFailedError;
}
