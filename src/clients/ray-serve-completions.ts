/**
 * Completions from the `somagent_slm` Serve application, sent through the
 * Serve HTTP proxy in the application's snake_case body. The application is
 * kept deployed by the deployment it is given (`ray-serve-deployment.ts`):
 * a completion only waits for it, and reports when the application stopped
 * answering so the deployment ensures it again.
 */
import type { CompletionJson } from "../../gen/somagent/orchestrator/v1/session_pb.js";
import type { RayConfig } from "../config.js";
import { PermanentCallError, TransientCallError } from "../shared/call-errors.js";
import { readAnswer } from "../shared/json-answer.js";
import type { Registry } from "../shared/metrics.js";
import { createRequestJson } from "./http-json.js";
import { RAY_SERVE_TARGET, slmCompletionUrl } from "./ray-serve-deployment.js";

/** One completion. */
export interface SlmCompletionRequest {
  prompt: string;
  model: string;
  sessionId: string;
  /** 1-4096; the application's default (256) when unset. */
  maxTokens?: number;
}

/** What the completions need of the deployment (see `RayServeDeployment`): the application kept serving. */
export interface SlmDeployment {
  whenServing(signal?: AbortSignal): Promise<void>;
  reportFailure(): void;
}

/** How the completions client is wired. */
export interface RayServeCompletionsOptions {
  /** Deploys the application the completions are sent to. */
  deployment: SlmDeployment;
  /** Where the outbound-call metrics are registered. */
  registry: Registry;
}

/** Completions from the SLM Serve application. */
export interface RayServeCompletions {
  /**
   * Runs one completion within `RAY_SERVE_TIMEOUT_MS`, waiting for the
   * deployment included. Throws {@link TransientCallError} when Ray Serve is
   * unreachable, not deployed, not ready or answers 5xx (and tells the
   * deployment, which ensures the application again), {@link PermanentCallError}
   * for a rejected request (4xx, the message names the field) or a malformed
   * answer; the signal's reason when the caller aborts.
   */
  complete(request: SlmCompletionRequest, signal?: AbortSignal): Promise<CompletionJson>;
}

/** Builds the completions client; calls to the Serve proxy carry no token (in Ray 2.60 the proxy does not check it, and the replica would see it). */
export function createRayServeCompletions(config: RayConfig, options: RayServeCompletionsOptions): RayServeCompletions {
  const requestJson = createRequestJson(options.registry);
  const { deployment } = options;
  const completionUrl = slmCompletionUrl(config);
  const limitMs = config.timeouts.completionMs;

  /** Waits for the deployment within the completion's limit; its own failure (Ray down) as it is. */
  async function served(limit: AbortSignal, signal?: AbortSignal): Promise<void> {
    try {
      await deployment.whenServing(limit);
    } catch (error) {
      if (!limit.aborted || signal?.aborted) throw error;
      throw new TransientCallError(RAY_SERVE_TARGET, `Ray Serve application not deployed within ${limitMs} ms; the worker keeps deploying it`, undefined, { cause: error });
    }
  }

  async function post(request: SlmCompletionRequest, limit: AbortSignal): Promise<CompletionJson> {
    const body: Record<string, unknown> = { prompt: request.prompt, model: request.model, session_id: request.sessionId };
    if (request.maxTokens !== undefined) body.max_tokens = request.maxTokens;
    try {
      const response = await requestJson({ target: RAY_SERVE_TARGET, url: completionUrl, body, timeoutMs: limitMs, signal: limit });
      return readCompletion(response.body);
    } catch (error) {
      if (error instanceof TransientCallError) {
        throw new TransientCallError(RAY_SERVE_TARGET, `Ray Serve is unreachable or not ready at ${completionUrl.href} (${error.detail})`, error.status, { cause: error });
      }
      // 404 from the proxy: the route is gone (Ray restarted, someone's PUT removed it); the next attempt finds it redeployed.
      if (error instanceof PermanentCallError && error.status === 404) {
        throw new TransientCallError(RAY_SERVE_TARGET, `Ray Serve has no route ${completionUrl.pathname} (${error.detail}); the worker redeploys it`, 404, { cause: error });
      }
      throw error;
    }
  }

  return {
    async complete(request, signal) {
      const limit = AbortSignal.any(signal ? [signal, AbortSignal.timeout(limitMs)] : [AbortSignal.timeout(limitMs)]);
      await served(limit, signal);
      try {
        return await post(request, limit);
      } catch (error) {
        // Unreachable, failing or without the route: Ray may have restarted empty. A caller's own cancellation says nothing of Ray.
        if (error instanceof TransientCallError && !signal?.aborted) deployment.reportFailure();
        if (signal?.aborted) throw signal.reason;
        throw error;
      }
    },
  };
}

/** Reads the application's answer (`text`, `model`, `provider`, `prompt_tokens`, `completion_tokens`) into `Completion` proto JSON. */
function readCompletion(body: unknown): CompletionJson {
  const answer = readAnswer(RAY_SERVE_TARGET, "a completion", body);
  const count = { min: 0, max: 2 ** 31 - 1 };
  return {
    text: answer.string("text"),
    model: answer.string("model"),
    provider: answer.string("provider"),
    promptTokens: answer.integer("prompt_tokens", count),
    completionTokens: answer.integer("completion_tokens", count),
  };
}
