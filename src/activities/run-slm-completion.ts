import { Context } from "@temporalio/activity";
import type { CompletionResult, SessionInput } from "../workflows/contract.js";
import type { ActivityDeps } from "./deps.js";
import { withPermanentFailures } from "./permanent-failure.js";

/** Builds `run-slm-completion`: the session's prompt through the Ray Serve application. */
export function createRunSlmCompletion(deps: ActivityDeps) {
  return (input: SessionInput): Promise<CompletionResult> =>
    withPermanentFailures(() =>
      deps.completions.complete(
        { prompt: input.prompt, model: input.model, sessionId: input.sessionId },
        Context.current().cancellationSignal,
      ),
    );
}
