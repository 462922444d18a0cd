/**
 * Limits on server streams (Watch, health Watch): how many one caller may hold
 * open, and how long any one may live. A stream past its age ends cleanly, as
 * on shutdown; the client resumes from the last sequence it saw, so a Watch
 * never pins a connection or a Temporal long-poll for the life of a workflow.
 */
import { Code, ConnectError, createContextKey, type Interceptor } from "@connectrpc/connect";

/** Who is calling, for per-caller limits: the authenticated subject, else the peer's address. */
export const CALLER = createContextKey<string>("unknown", { description: "caller identity for limits" });

/** The stream limits (see `EdgeLimits` in config.ts). */
export interface StreamLimits {
  maxStreamsPerCaller: number;
  maxStreamAgeMs: number;
}

/**
 * Refuses a server stream with RESOURCE_EXHAUSTED when its caller already
 * holds `maxStreamsPerCaller`, and ends each stream cleanly after
 * `maxStreamAgeMs` by aborting the signal its handler reads.
 */
export function createStreamLimitsInterceptor(limits: StreamLimits): Interceptor {
  const open = new Map<string, number>();
  return (next) => async (req) => {
    if (req.method.methodKind !== "server_streaming") return next(req);
    const caller = req.contextValues.get(CALLER);
    const held = open.get(caller) ?? 0;
    if (held >= limits.maxStreamsPerCaller) {
      throw new ConnectError(
        `${held} streams are already open for this caller, the most allowed (API_MAX_STREAMS_PER_CALLER); close one first`,
        Code.ResourceExhausted,
      );
    }
    open.set(caller, held + 1);
    const aged = new AbortController();
    const timer = setTimeout(() => aged.abort(), limits.maxStreamAgeMs);
    let released = false;
    // Idempotent: called when the stream ends, and when the call is aborted before it was ever read.
    const release = () => {
      if (released) return;
      released = true;
      clearTimeout(timer);
      const left = (open.get(caller) ?? 1) - 1;
      if (left === 0) open.delete(caller);
      else open.set(caller, left);
    };
    req.signal.addEventListener("abort", release, { once: true });
    let response;
    try {
      response = await next({ ...req, signal: AbortSignal.any([req.signal, aged.signal]) });
    } catch (error) {
      release();
      throw error;
    }
    if (!response.stream) {
      release();
      return response;
    }
    const messages = response.message;
    return {
      ...response,
      message: (async function* () {
        try {
          yield* messages;
        } finally {
          release();
        }
      })(),
    };
  };
}
