/**
 * The SessionService handlers, shared by every protocol (the REST transcoder
 * calls these same functions). They turn requests into the session port's
 * terms and back; authentication, validation, error mapping and observation
 * happen in the interceptors. The caller the auth interceptor established is
 * passed to the port, which decides what that caller may see.
 */
import { randomUUID } from "node:crypto";
import type { ServiceImpl } from "@connectrpc/connect";
import type { SessionService } from "../../gen/somagent/orchestrator/v1/session_pb.js";
import type { SessionPort } from "../temporal/session-port.js";
import { DEFAULT_MODEL, type SessionInput } from "../workflows/contract.js";
import { sessionCallerOf } from "./auth.js";

/**
 * Builds the SessionService implementation over a session port. A Watch ends
 * when its call's signal aborts: the client went away, or the stream limits
 * ended it (its age, or shutdown: stream-limits.ts).
 */
export function createSessionService(port: SessionPort): ServiceImpl<typeof SessionService> {
  return {
    // The call's signal carries the client's deadline and cancellation to Temporal.
    async start(request, context) {
      const metadata: Record<string, unknown> = request.metadata ?? {};
      // protovalidate has already checked that a given session_id is a well-formed string.
      const sessionId = typeof metadata.session_id === "string" ? metadata.session_id : randomUUID();
      const input: SessionInput = {
        sessionId,
        tenant: request.tenant,
        user: request.user,
        prompt: request.prompt,
        model: request.model === "" ? DEFAULT_MODEL : request.model,
        metadata,
      };
      return port.start(input, sessionCallerOf(context.values), context.signal);
    },

    async get(request, context) {
      return port.describe(request.workflowId, sessionCallerOf(context.values), context.signal);
    },

    async *watch(request, context) {
      yield* port.watch(request.workflowId, request.afterSequence, sessionCallerOf(context.values), context.signal);
    },

    async cancel(request, context) {
      return port.cancel(request.workflowId, sessionCallerOf(context.values), context.signal);
    },

    async list(request, context) {
      return port.list(request, sessionCallerOf(context.values), context.signal);
    },
  };
}
