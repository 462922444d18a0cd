import { Context } from "@temporalio/activity";
import type { CompletionResult, SessionInput } from "../workflows/contract.js";
import { withHeartbeats } from "./heartbeat.js";
import { withPermanentFailures } from "./permanent-failure.js";

/** One completion, as `run-slm-completion` asks for it. */
export interface CompletionPrompt {
  prompt: string;
  model: string;
  sessionId: string;
  /** Upper bound of generated tokens; the model server's default when unset. */
  maxTokens?: number;
}

/** What `run-slm-completion` needs: a small language model behind some server. */
export interface RunSlmCompletionDeps {
  completions: {
    /** Throws TransientCallError when the server is down or not ready, PermanentCallError for a rejected prompt. */
    complete(prompt: CompletionPrompt, signal?: AbortSignal): Promise<CompletionResult>;
  };
}

/** Builds `run-slm-completion`: the session's prompt through the SLM server (Ray Serve). */
export function createRunSlmCompletion(deps: RunSlmCompletionDeps) {
  return (input: SessionInput): Promise<CompletionResult> =>
    withHeartbeats(() =>
      withPermanentFailures(() =>
        deps.completions.complete(
          { prompt: input.prompt, model: input.model, sessionId: input.sessionId },
          Context.current().cancellationSignal,
        ),
      ),
    );
}
