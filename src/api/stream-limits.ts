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

/** An open stream: when it ages out, and the controller its handler's signal follows. */
interface OpenStream {
  endsAt: number;
  end: AbortController;
}

/**
 * Refuses a server stream with RESOURCE_EXHAUSTED when its caller already
 * holds `maxStreamsPerCaller`, and ends each stream cleanly, by aborting the
 * signal its handler reads, after `maxStreamAgeMs` or when `drain` aborts
 * (shutdown). The handler's signal also aborts when the call's does (client
 * cancel, deadline).
 */
export function createStreamLimitsInterceptor(limits: StreamLimits, drain?: AbortSignal): Interceptor {
  const heldByCaller = new Map<string, number>();
  const expiries = createExpiries(limits.maxStreamAgeMs);
  drain?.addEventListener("abort", () => expiries.endAll(drain.reason), { once: true });
  return (next) => async (req) => {
    if (req.method.methodKind !== "server_streaming") return next(req);
    const caller = req.contextValues.get(CALLER);
    const held = heldByCaller.get(caller) ?? 0;
    if (held >= limits.maxStreamsPerCaller) {
      throw new ConnectError(
        `${held} streams are already open for this caller, the most allowed (API_MAX_STREAMS_PER_CALLER); close one first`,
        Code.ResourceExhausted,
      );
    }
    heldByCaller.set(caller, held + 1);
    const stream = expiries.add();
    if (drain?.aborted) stream.end.abort(drain.reason);
    let released = false;
    // Idempotent: called when the stream ends, and when the call is aborted before it was ever read.
    const release = () => {
      if (released) return;
      released = true;
      expiries.remove(stream);
      const left = (heldByCaller.get(caller) ?? 1) - 1;
      if (left === 0) heldByCaller.delete(caller);
      else heldByCaller.set(caller, left);
    };
    const cancelled = () => {
      stream.end.abort(req.signal.reason);
      release();
    };
    if (req.signal.aborted) cancelled();
    else req.signal.addEventListener("abort", cancelled, { once: true });
    const ended = () => {
      req.signal.removeEventListener("abort", cancelled);
      release();
    };
    let response;
    try {
      response = await next({ ...req, signal: stream.end.signal });
    } catch (error) {
      ended();
      throw error;
    }
    if (!response.stream) {
      ended();
      return response;
    }
    const messages = response.message;
    return {
      ...response,
      message: (async function* () {
        try {
          yield* messages;
        } finally {
          ended();
        }
      })(),
    };
  };
}

/**
 * The open streams in the order they opened, which is the order they age out
 * (every stream gets the same age), so one timer, armed for the oldest, serves
 * them all: a timer per stream cost memory and timer-list work for each of
 * thousands of idle Watches.
 */
function createExpiries(maxAgeMs: number) {
  const open = new Set<OpenStream>();
  let timer: NodeJS.Timeout | undefined;

  function arm(): void {
    const oldest = open.values().next().value;
    if (!oldest) return;
    timer = setTimeout(expire, Math.max(0, oldest.endsAt - Date.now()));
    // An open stream keeps the process alive by its socket, not by this timer.
    timer.unref();
  }

  function expire(): void {
    timer = undefined;
    const now = Date.now();
    for (const stream of open) {
      if (stream.endsAt > now) break;
      open.delete(stream);
      stream.end.abort();
    }
    arm();
  }

  return {
    add(): OpenStream {
      const stream = { endsAt: Date.now() + maxAgeMs, end: new AbortController() };
      open.add(stream);
      if (!timer) arm();
      return stream;
    },
    remove(stream: OpenStream): void {
      open.delete(stream);
      if (open.size === 0 && timer) {
        clearTimeout(timer);
        timer = undefined;
      }
    },
    endAll(reason: unknown): void {
      for (const stream of open) stream.end.abort(reason);
    },
  };
}
