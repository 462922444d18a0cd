/**
 * The session port: everything the API's handlers may ask of Temporal. The
 * handlers depend on this interface only; {@link createTemporalSessionPort}
 * implements it over one Temporal connection.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { status as GrpcStatus } from "@grpc/grpc-js";
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, isGrpcServiceError } from "@temporalio/client";
import type { Payload } from "@temporalio/common";
import proto, { type temporal } from "@temporalio/proto";
import { Counter, Histogram, type Registry } from "prom-client";
import {
  GetResponseSchema,
  SessionStatus,
  StartResponseSchema,
  type GetResponse,
  type StartResponse,
  type WatchResponse,
} from "../../gen/somagent/orchestrator/v1/session_pb.js";
import { SESSION_WORKFLOW_ID_PREFIX, SESSION_WORKFLOW_TYPE, type SessionInput } from "../workflows/contract.js";
import type { TemporalConnection } from "./connection.js";
import { SessionNotFoundError, TemporalDeadlineError, TemporalUnavailableError } from "./errors.js";
import { closedStatus, createSessionEventState, isTerminalEvent, toSessionEvent } from "./session-events.js";

// @temporalio/proto is CommonJS without static named exports, so Node's ESM loader needs the default import.
const { api } = proto.temporal;

/** What Temporal is asked on behalf of the API's handlers. */
export interface SessionPort {
  /**
   * Starts the session's workflow `session-{sessionId}`; starting one that
   * already exists returns the existing run (idempotent).
   * Throws {@link TemporalUnavailableError}, {@link TemporalDeadlineError},
   * or `signal.reason` when `signal` (the caller's deadline or cancellation) aborts first.
   */
  start(input: SessionInput, signal?: AbortSignal): Promise<StartResponse>;
  /**
   * The session's status, history length and, once closed, its result or
   * failure. Throws {@link SessionNotFoundError}, {@link TemporalUnavailableError},
   * {@link TemporalDeadlineError}, or `signal.reason` like {@link start}.
   */
  describe(workflowId: string, signal?: AbortSignal): Promise<GetResponse>;
  /**
   * The session's events with a sequence greater than `afterSequence`, read
   * from the workflow history with Temporal's long-poll; ends after the
   * terminal event or when `signal` aborts. Throws like {@link describe}.
   */
  watch(workflowId: string, afterSequence: bigint, signal: AbortSignal): AsyncIterable<WatchResponse>;
  /** True when Temporal answers within `timeoutMs`; never throws. */
  ping(timeoutMs: number): Promise<boolean>;
}

/** Deadline of one unary Temporal call. */
const CALL_TIMEOUT_MS = 10_000;
/** Deadline of one history long-poll; Temporal answers empty after ~20 s without news. */
const LONG_POLL_TIMEOUT_MS = 30_000;

const CLOSE_EVENT = api.enums.v1.HistoryEventFilterType.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT;

const STATUS_BY_EXECUTION: Record<string, SessionStatus> = {
  RUNNING: SessionStatus.RUNNING,
  CANCELLED: SessionStatus.CANCELED,
  TERMINATED: SessionStatus.TERMINATED,
  TIMED_OUT: SessionStatus.TIMED_OUT,
  FAILED: SessionStatus.FAILED,
  CONTINUED_AS_NEW: SessionStatus.RUNNING,
};

/**
 * Implements {@link SessionPort} over the API's Temporal connection, measuring
 * its calls on `registry`. Throws when the Temporal-call metrics are already
 * registered there: one port per registry.
 */
export function createTemporalSessionPort(temporalConnection: TemporalConnection, registry: Registry): SessionPort {
  const { connection, client, codec, namespace, taskQueue } = temporalConnection;
  const calls = new Counter({
    name: "somagent_temporal_calls_total",
    help: "Calls from the API to Temporal, by operation and outcome (ok, not_found, unavailable, deadline, aborted, error).",
    labelNames: ["operation", "outcome"] as const,
    registers: [registry],
  });
  const callDuration = new Histogram({
    name: "somagent_temporal_call_duration_seconds",
    help: "Duration of calls from the API to Temporal, by operation (history long-polls excluded).",
    labelNames: ["operation"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });

  async function call<T>(operation: string, fn: () => Promise<T>, workflowId?: string, signal?: AbortSignal): Promise<T> {
    const stop = callDuration.startTimer({ operation });
    try {
      const bounded = () => connection.withDeadline(Date.now() + CALL_TIMEOUT_MS, fn);
      const value = await (signal ? connection.withAbortSignal(signal, bounded) : bounded());
      calls.inc({ operation, outcome: "ok" });
      return value;
    } catch (error) {
      if (signal?.aborted) {
        calls.inc({ operation, outcome: "aborted" });
        throw signal.reason;
      }
      throw translate(operation, error, workflowId);
    } finally {
      stop();
    }
  }

  function translate(operation: string, error: unknown, workflowId?: string): Error {
    const code = grpcCode(error);
    let translated: Error;
    // A missing namespace is NOT_FOUND too, but it is a misconfiguration, not an unknown session.
    const missingWorkflow = error instanceof WorkflowNotFoundError || (code === GrpcStatus.NOT_FOUND && !/namespace/i.test(errorText(error)));
    if (workflowId !== undefined && missingWorkflow) {
      translated = new SessionNotFoundError(workflowId);
    } else if (code === GrpcStatus.UNAVAILABLE) {
      translated = new TemporalUnavailableError(operation, { cause: error });
    } else if (code === GrpcStatus.DEADLINE_EXCEEDED) {
      translated = new TemporalDeadlineError(operation, { cause: error });
    } else {
      translated = error instanceof Error ? error : new Error(String(error));
    }
    calls.inc({ operation, outcome: outcomeOf(translated) });
    return translated;
  }

  /** Decrypts the payloads the event mapping reads, in place. */
  async function decodePayloads(event: temporal.api.history.v1.IHistoryEvent): Promise<void> {
    const holders = [
      event.workflowExecutionStartedEventAttributes?.input,
      event.activityTaskCompletedEventAttributes?.result,
      event.workflowExecutionCompletedEventAttributes?.result,
    ];
    for (const holder of holders) {
      if (holder?.payloads?.length) holder.payloads = await codec.decode(holder.payloads as Payload[]);
    }
  }

  async function readCloseEvent(workflowId: string, runId: string, signal?: AbortSignal): Promise<WatchResponse | undefined> {
    const page = await call(
      "read-close-event",
      () => connection.workflowService.getWorkflowExecutionHistory({
        namespace,
        execution: { workflowId, runId },
        historyEventFilterType: CLOSE_EVENT,
      }),
      workflowId,
      signal,
    );
    const event = page.history?.events?.[0];
    if (!event) return undefined;
    await decodePayloads(event);
    return toSessionEvent(event, createSessionEventState());
  }

  return {
    async start(input, signal) {
      const workflowId = `${SESSION_WORKFLOW_ID_PREFIX}${input.sessionId}`;
      let runId: string;
      try {
        // A running session is returned by the conflict policy; a closed one is never started twice.
        const handle = await call("start", () =>
          client.workflow.start(SESSION_WORKFLOW_TYPE, {
            taskQueue,
            workflowId,
            args: [input],
            workflowIdConflictPolicy: "USE_EXISTING",
            workflowIdReusePolicy: "REJECT_DUPLICATE",
          }),
          undefined,
          signal,
        );
        runId = handle.firstExecutionRunId;
      } catch (error) {
        if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
        runId = (await call("describe", () => client.workflow.getHandle(workflowId).describe(), workflowId, signal)).runId;
      }
      return create(StartResponseSchema, { workflowId, runId, sessionId: input.sessionId, taskQueue });
    },

    async describe(workflowId, signal) {
      const description = await call("describe", () => client.workflow.getHandle(workflowId).describe(), workflowId, signal);
      const response = create(GetResponseSchema, {
        workflowId,
        runId: description.runId,
        status: STATUS_BY_EXECUTION[description.status.name] ?? SessionStatus.UNSPECIFIED,
        historyLength: BigInt(description.historyLength),
        startTime: timestampFromMs(description.startTime.getTime()),
        closeTime: description.closeTime ? timestampFromMs(description.closeTime.getTime()) : undefined,
      });
      if (description.status.name === "COMPLETED" || description.status.name === "FAILED") {
        const close = await readCloseEvent(workflowId, description.runId, signal);
        if (close?.event.case === "completed" || close?.event.case === "rejected") {
          response.status = closedStatus(close.event.value);
          response.result = close.event.value;
        } else if (close?.event.case === "failed") {
          response.failure = close.event.value.reason;
        }
      }
      return response;
    },

    async *watch(workflowId, afterSequence, signal) {
      const state = createSessionEventState();
      let nextPageToken: Uint8Array | undefined;
      while (!signal.aborted) {
        let page: temporal.api.workflowservice.v1.GetWorkflowExecutionHistoryResponse;
        try {
          page = await connection.withAbortSignal(signal, () =>
            connection.withDeadline(Date.now() + LONG_POLL_TIMEOUT_MS, () =>
              connection.workflowService.getWorkflowExecutionHistory({
                namespace,
                execution: { workflowId },
                nextPageToken,
                waitNewEvent: true,
              }),
            ),
          );
        } catch (error) {
          if (signal.aborted || grpcCode(error) === GrpcStatus.CANCELLED) return;
          // A long-poll that saw no news before our own deadline: ask again.
          if (grpcCode(error) === GrpcStatus.DEADLINE_EXCEEDED) continue;
          throw translate("watch", error, workflowId);
        }
        calls.inc({ operation: "watch", outcome: "ok" });
        for (const event of page.history?.events ?? []) {
          // Events up to the resume point are mapped too (not sent): they teach the
          // mapping activity types, and a terminal one ends the stream.
          await decodePayloads(event);
          const mapped = toSessionEvent(event, state);
          if (mapped && mapped.sequence > afterSequence) yield mapped;
          if (mapped && isTerminalEvent(mapped)) return;
        }
        if (!page.nextPageToken?.length) return;
        nextPageToken = page.nextPageToken;
      }
    },

    async ping(timeoutMs) {
      try {
        await connection.withDeadline(Date.now() + timeoutMs, () => connection.workflowService.getSystemInfo({}));
        return true;
      } catch {
        return false;
      }
    },
  };
}

function grpcCode(error: unknown): number | undefined {
  for (let current = error; current; current = (current as { cause?: unknown }).cause) {
    if (isGrpcServiceError(current)) return current.code;
  }
  return undefined;
}

function errorText(error: unknown): string {
  const messages: string[] = [];
  for (let current = error; current; current = (current as { cause?: unknown }).cause) {
    if (current instanceof Error) messages.push(current.message);
    else break;
  }
  return messages.join(" ");
}

function outcomeOf(error: Error): string {
  if (error instanceof SessionNotFoundError) return "not_found";
  if (error instanceof TemporalUnavailableError) return "unavailable";
  if (error instanceof TemporalDeadlineError) return "deadline";
  return "error";
}
