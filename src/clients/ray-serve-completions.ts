/**
 * Completions from the `somagent_slm` Serve application, sent through the
 * Serve HTTP proxy in the application's snake_case body. The application is
 * deployed by the deployment it is given (`ray-serve-deployment.ts`), first
 * when this client has not seen it serve, and again when its route vanishes.
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

/** What the completions need of the deployment: the application made to serve (see `RayServeDeployment.ensureDeployed`). */
export interface SlmDeployment {
  ensureDeployed(signal?: AbortSignal): Promise<void>;
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
   * Runs one completion, deploying the application first if this client has
   * not seen it serve (and again if the route has vanished; after a
   * transient failure the next call checks the deployment first). Throws
   * {@link TransientCallError} when Ray Serve is unreachable, not ready or
   * answers 5xx, {@link PermanentCallError} for a rejected request (4xx, the
   * message names the field) or a malformed answer; the deployment's errors as they are.
   */
  complete(request: SlmCompletionRequest, signal?: AbortSignal): Promise<CompletionJson>;
}

/** Builds the completions client; calls to the Serve proxy carry no token (in Ray 2.60 the proxy does not check it, and the replica would see it). */
export function createRayServeCompletions(config: RayConfig, options: RayServeCompletionsOptions): RayServeCompletions {
  const requestJson = createRequestJson(options.registry);
  const { deployment } = options;
  const completionUrl = slmCompletionUrl(config);
  /** Whether this client has seen the application serve since its last failure. */
  let serving = false;

  async function deployed(signal?: AbortSignal): Promise<void> {
    await deployment.ensureDeployed(signal);
    serving = true;
  }

  async function post(request: SlmCompletionRequest, signal?: AbortSignal): Promise<CompletionJson> {
    const body: Record<string, unknown> = { prompt: request.prompt, model: request.model, session_id: request.sessionId };
    if (request.maxTokens !== undefined) body.max_tokens = request.maxTokens;
    try {
      const response = await requestJson({ target: RAY_SERVE_TARGET, url: completionUrl, body, timeoutMs: config.timeouts.completionMs, signal });
      return readCompletion(response.body);
    } catch (error) {
      if (error instanceof TransientCallError) {
        throw new TransientCallError(RAY_SERVE_TARGET, `Ray Serve is unreachable or not ready at ${completionUrl.href} (${error.detail})`, error.status, { cause: error });
      }
      throw error;
    }
  }

  return {
    async complete(request, signal) {
      if (!serving) await deployed(signal);
      try {
        return await post(request, signal);
      } catch (error) {
        // Unreachable or failing: Ray may have restarted empty, and its Serve proxy only returns with
        // a deployment, so the next call asks the dashboard first instead of trusting the old one.
        if (error instanceof TransientCallError) serving = false;
        // 404 from the proxy: the route is gone (Ray restarted, someone's PUT removed it); redeploy once.
        if (!(error instanceof PermanentCallError && error.status === 404)) throw error;
        serving = false;
        await deployed(signal);
        return post(request, signal);
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
