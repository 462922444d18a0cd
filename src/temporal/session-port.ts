/**
 * The session port: everything the API's handlers may ask of Temporal. The
 * handlers depend on this interface only; {@link createTemporalSessionPort}
 * implements it over one Temporal connection.
 *
 * It is also where a session's ownership is decided. Each session records its
 * owner (tenant, user, and whether that caller was authenticated) in the
 * workflow's memo at start, which goes through the payload codec like every
 * payload; the port checks it against the {@link SessionCaller} the API
 * established, never against a request body:
 * - an authenticated caller sees its own tenant's sessions only (those started
 *   by an authenticated caller); any other is NOT_FOUND, the same answer as
 *   for an id that never existed;
 * - the raw session token goes to the session's own user only; others of the
 *   tenant see the token's claims, type and lifetime with an empty `token`;
 * - with authentication off (an anonymous caller) every session is visible,
 *   token included: the local/demo mode;
 * - a workflow that is not a session (another workflow type) is NOT_FOUND to
 *   everyone;
 * - Start with a session id already held by someone else is ALREADY_EXISTS.
 */
import { clone, create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { status as GrpcStatus, type ServiceError as GrpcServiceError } from "@grpc/grpc-js";
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  isGrpcServiceError,
  type WorkflowExecutionDescription,
} from "@temporalio/client";
import { defaultPayloadConverter, type Payload } from "@temporalio/common";
import proto, { type temporal } from "@temporalio/proto";
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import {
  CancelResponseSchema,
  GetResponseSchema,
  ListResponseSchema,
  SessionStatus,
  StartResponseSchema,
  WatchResponseSchema,
  type CancelResponse,
  type GetResponse,
  type ListRequest,
  type ListResponse,
  type SessionResult,
  type StartResponse,
  type WatchResponse,
} from "../../gen/somagent/orchestrator/v1/session_pb.js";
import { SEARCH_ATTRIBUTE, SESSION_WORKFLOW_ID_PREFIX, SESSION_WORKFLOW_TYPE, type SessionInput } from "../workflows/contract.js";
import type { TemporalConnection } from "./connection.js";
import {
  CallerMismatchError,
  InvalidFieldError,
  SessionAlreadyExistsError,
  SessionFinishedError,
  SessionNotFoundError,
  TemporalDeadlineError,
  TemporalOverloadedError,
  TemporalUnavailableError,
} from "./errors.js";
import { closedStatus, createSessionEventState, toSessionEvent } from "./session-events.js";
import { createSessionFeeds, type HistoryPage } from "./session-feed.js";
import { isListableTenant, pageSize, sessionSummary, unwrapPageToken, visibilityQuery, wrapPageToken, type SummaryMemo } from "./session-list.js";

// @temporalio/proto is CommonJS without static named exports, so Node's ESM loader needs the default import.
const { api } = proto.temporal;

/**
 * Who asks the port, as the API established it. With authentication on, the
 * tenant and user come from a verified bearer token, never from a body.
 */
export type SessionCaller =
  | { readonly authenticated: true; readonly tenant: string; readonly user: string }
  /** Authentication is off: the local/demo mode, where every session is visible. */
  | { readonly authenticated: false };

/** The caller when the API runs without authentication. */
export const ANONYMOUS_CALLER: SessionCaller = Object.freeze({ authenticated: false });

/** Who started a session, as recorded in its workflow's memo. */
export interface SessionOwner {
  tenant: string;
  user: string;
  /** True when the tenant and user came from a verified token, false when from an unauthenticated body. */
  authenticated: boolean;
}

/** Memo key of the session's {@link SessionOwner}. */
export const OWNER_MEMO_KEY = "somagent.owner";
/** Memo key of what List shows of a session beyond its owner: `{ model }`. */
export const SUMMARY_MEMO_KEY = "somagent.summary";

/** What Temporal is asked on behalf of the API's handlers. */
export interface SessionPort {
  /**
   * Starts the session's workflow `session-{sessionId}`, recording its owner.
   * Starting one that already exists returns the existing run to its owner
   * (idempotent); anyone else gets {@link SessionAlreadyExistsError}. Throws
   * {@link CallerMismatchError} when an authenticated caller's input names
   * another tenant or user, {@link TemporalUnavailableError},
   * {@link TemporalDeadlineError}, or `signal.reason` when `signal` (the
   * caller's deadline or cancellation) aborts first.
   */
  start(input: SessionInput, caller: SessionCaller, signal?: AbortSignal): Promise<StartResponse>;
  /**
   * The session's status, history length and, once closed, its result or
   * failure (the raw token only for its owner). Throws
   * {@link SessionNotFoundError} (also for a session the caller may not see, or
   * a workflow that is not a session), {@link TemporalUnavailableError},
   * {@link TemporalDeadlineError}, or `signal.reason` like {@link start}.
   * A closed session's answer is shared by the calls that read it from memory:
   * callers must not modify it.
   */
  describe(workflowId: string, caller: SessionCaller, signal?: AbortSignal): Promise<GetResponse>;
  /**
   * The session's events with a sequence greater than `afterSequence`, read
   * from the workflow history with Temporal's long-poll (one per session,
   * shared by all its watchers: session-feed.ts); ends after the
   * terminal event or when `signal` aborts. Visibility and the token as for
   * {@link describe}; throws like it.
   */
  watch(workflowId: string, afterSequence: bigint, caller: SessionCaller, signal: AbortSignal): AsyncIterable<WatchResponse>;
  /**
   * Requests the cancellation of a running session the caller may see (the
   * workflow handles it) and says where it stands: RUNNING while it winds
   * down, CANCELED once it has ended. Asking again is harmless. Throws
   * {@link SessionFinishedError} when the session finished otherwise, and like
   * {@link describe}.
   */
  cancel(workflowId: string, caller: SessionCaller, signal?: AbortSignal): Promise<CancelResponse>;
  /**
   * A page of one tenant's sessions from Temporal's visibility store
   * (eventually consistent), filtered as `request` says: the caller's tenant
   * when authenticated (`request.tenant` must then be empty or the same, else
   * {@link CallerMismatchError}), else `request.tenant`, which is then
   * required. Throws {@link InvalidFieldError} naming `tenant` or
   * `page_token`, {@link TemporalUnavailableError}, {@link TemporalDeadlineError},
   * or `signal.reason` like {@link start}.
   */
  list(request: ListRequest, caller: SessionCaller, signal?: AbortSignal): Promise<ListResponse>;
  /** True when Temporal answers within `timeoutMs`; never throws. */
  ping(timeoutMs: number): Promise<boolean>;
}

/** Deadline of one unary Temporal call. */
const CALL_TIMEOUT_MS = 10_000;
/**
 * Deadline of one history long-poll. Temporal answers an empty page after its
 * `history.longPollExpirationInterval` (20 s by default; at most ~29 s, however
 * high it is set, measured on the dev server), so this deadline only guards
 * against a server that never answers. Kept well above that: a long-poll that
 * ends on our deadline instead costs a cancelled HTTP/2 stream and a gRPC
 * error with its stack trace, thousands of times over when many sessions are
 * watched and Temporal answers late under load.
 */
const LONG_POLL_TIMEOUT_MS = 60_000;

/**
 * How long what was read of a session is reused: a closed session's Get
 * answer, and any session's owner (set at start, never changed). Neither
 * changes for a run, but Temporal may still delete it (retention) or reset it
 * into a new run under the same id: for this long after a read, the API
 * answers as it did.
 */
const RECENT_READ_TTL_MS = 30_000;
/** Sessions remembered at most, per kind; the oldest read is forgotten first. */
const RECENT_READ_LIMIT = 10_000;

/** A closed session's Get answers, built once: with the token and without it, and its owner, as read from Temporal. */
interface ClosedSession {
  response: GetResponse;
  withheld: GetResponse;
  owner: SessionOwner | undefined;
}

/** Reads of Temporal kept for {@link RECENT_READ_TTL_MS} by workflow id. */
interface RecentReads<T> {
  get(workflowId: string): T | undefined;
  set(workflowId: string, value: T): void;
}

function createRecentReads<T>(): RecentReads<T> {
  const reads = new Map<string, { value: T; readAt: number }>();
  return {
    get(workflowId) {
      const read = reads.get(workflowId);
      if (read && Date.now() - read.readAt < RECENT_READ_TTL_MS) return read.value;
      reads.delete(workflowId);
      return undefined;
    },
    set(workflowId, value) {
      reads.delete(workflowId);
      reads.set(workflowId, { value, readAt: Date.now() });
      if (reads.size > RECENT_READ_LIMIT) reads.delete(reads.keys().next().value as string);
    },
  };
}

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
    help: "Calls from the API to Temporal, by operation and outcome (ok, not_found, unavailable, deadline, overloaded, already_started, aborted, error; cached: a describe answered from a recent read).",
    labelNames: ["operation", "outcome"] as const,
    registers: [registry],
  });
  const sessionsStarted = new Counter({
    name: "somagent_sessions_started_total",
    help: "Start calls that returned a session, by outcome: started (a new workflow) or existing (the same caller starting it again).",
    labelNames: ["outcome"] as const,
    registers: [registry],
  });
  const callDuration = new Histogram({
    name: "somagent_temporal_call_duration_seconds",
    help: "Duration of calls from the API to Temporal, by operation (history long-polls excluded).",
    labelNames: ["operation"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });

  /**
   * Runs `fn`'s Temporal calls under `signal` through a signal of their own:
   * the SDK never removes the abort listener it adds for each call, so a
   * long-lived signal (a Watch stream's, a feed's) would keep every call it
   * ever made, about 80 KB each, until the stream ends.
   */
  async function withSignal<T>(signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
    const own = new AbortController();
    const forward = () => own.abort(signal.reason);
    if (signal.aborted) forward();
    else signal.addEventListener("abort", forward, { once: true });
    try {
      return await connection.withAbortSignal(own.signal, fn);
    } finally {
      signal.removeEventListener("abort", forward);
    }
  }

  /** One page of a session's history for the shared feeds; see {@link ReadHistoryPage}. */
  async function readHistoryPage(workflowId: string, nextPageToken: Uint8Array | undefined, signal: AbortSignal): Promise<HistoryPage> {
    let page: temporal.api.workflowservice.v1.GetWorkflowExecutionHistoryResponse;
    try {
      page = await withSignal(signal, () =>
        connection.withDeadline(Date.now() + LONG_POLL_TIMEOUT_MS, () =>
          connection.workflowService.getWorkflowExecutionHistory({ namespace, execution: { workflowId }, nextPageToken, waitNewEvent: true }),
        ),
      );
    } catch (error) {
      if (signal.aborted || grpcCode(error) === GrpcStatus.CANCELLED) return { events: [], nextPageToken, ended: true };
      // A long-poll that saw no news before our own deadline: ask again.
      if (grpcCode(error) === GrpcStatus.DEADLINE_EXCEEDED) return { events: [], nextPageToken, ended: false };
      throw translate("watch", error, workflowId);
    }
    calls.inc({ operation: "watch", outcome: "ok" });
    const events = page.history?.events ?? [];
    for (const event of events) await decodePayloads(event);
    return { events, nextPageToken: page.nextPageToken ?? undefined, ended: !page.nextPageToken?.length };
  }

  const feeds = createSessionFeeds(readHistoryPage);
  new Gauge({
    name: "somagent_watched_sessions",
    help: "Sessions the API follows for Watch streams: one shared history long-poll each, however many streams watch it.",
    registers: [registry],
    collect() {
      this.set(feeds.size());
    },
  });

  // A finished session's Get costs two Temporal reads (describe, then the close event); its answer cannot change.
  const closedSessions = createRecentReads<ClosedSession>();
  // What a Watch needs to know before it follows a session: whose it is (a describe otherwise).
  const sessionOwners = createRecentReads<{ owner: SessionOwner | undefined }>();

  async function call<T>(operation: string, fn: () => Promise<T>, workflowId?: string, signal?: AbortSignal): Promise<T> {
    const stop = callDuration.startTimer({ operation });
    try {
      const bounded = () => connection.withDeadline(Date.now() + CALL_TIMEOUT_MS, fn);
      const value = await (signal ? withSignal(signal, bounded) : bounded());
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
    } else if (code === GrpcStatus.RESOURCE_EXHAUSTED) {
      translated = new TemporalOverloadedError(operation, grpcError(error)?.details || "resource exhausted", { cause: error });
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

  function describeExecution(workflowId: string, signal?: AbortSignal): Promise<WorkflowExecutionDescription> {
    return call("describe", () => client.workflow.getHandle(workflowId).describe(), workflowId, signal);
  }

  /** The execution, when it is a session `caller` may see; else {@link SessionNotFoundError}, as for an id never used. */
  async function visibleSession(workflowId: string, caller: SessionCaller, signal?: AbortSignal): Promise<WorkflowExecutionDescription> {
    const description = await describeExecution(workflowId, signal);
    if (!isSession(description)) throw new SessionNotFoundError(workflowId);
    const owner = ownerOf(description);
    sessionOwners.set(workflowId, { owner });
    if (!isVisibleTo(caller, owner)) throw new SessionNotFoundError(workflowId);
    return description;
  }

  /** The owner of a session `caller` may see, recently read or described now; else {@link SessionNotFoundError}. */
  async function visibleOwner(workflowId: string, caller: SessionCaller, signal: AbortSignal): Promise<SessionOwner | undefined> {
    const known = sessionOwners.get(workflowId);
    if (!known) return ownerOf(await visibleSession(workflowId, caller, signal));
    calls.inc({ operation: "describe", outcome: "cached" });
    if (!isVisibleTo(caller, known.owner)) throw new SessionNotFoundError(workflowId);
    return known.owner;
  }

  /** The user and model a listed session's memo holds (encrypted like every payload); empty when absent. */
  async function summaryMemo(memo: temporal.api.common.v1.IMemo | null | undefined): Promise<SummaryMemo> {
    const read = async (key: string): Promise<Record<string, unknown>> => {
      const payload = memo?.fields?.[key];
      if (!payload) return {};
      const [decoded] = await codec.decode([payload as Payload]);
      const value = decoded ? defaultPayloadConverter.fromPayload<unknown>(decoded) : undefined;
      return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : {};
    };
    const [owner, summary] = await Promise.all([read(OWNER_MEMO_KEY), read(SUMMARY_MEMO_KEY)]);
    return {
      user: typeof owner.user === "string" ? owner.user : "",
      model: typeof summary.model === "string" ? summary.model : "",
    };
  }

  const port: SessionPort = {
    async start(input, caller, signal) {
      if (caller.authenticated) {
        if (input.tenant !== caller.tenant) throw new CallerMismatchError("tenant");
        if (input.user !== caller.user) throw new CallerMismatchError("user");
      }
      const owner: SessionOwner = { tenant: input.tenant, user: input.user, authenticated: caller.authenticated };
      const options = sessionStartOptions(input, owner, taskQueue);
      const { workflowId } = options;
      let runId: string;
      try {
        const handle = await call("start", () => client.workflow.start(SESSION_WORKFLOW_TYPE, options), undefined, signal);
        runId = handle.firstExecutionRunId;
        sessionsStarted.inc({ outcome: "started" });
      } catch (error) {
        if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
        const existing = await describeExecution(workflowId, signal);
        if (!isSession(existing) || !isRetryOf(owner, ownerOf(existing))) throw new SessionAlreadyExistsError(workflowId);
        runId = existing.runId;
        sessionsStarted.inc({ outcome: "existing" });
      }
      return create(StartResponseSchema, { workflowId, runId, sessionId: input.sessionId, taskQueue });
    },

    async describe(workflowId, caller, signal) {
      const closed = closedSessions.get(workflowId);
      if (closed) {
        calls.inc({ operation: "describe", outcome: "cached" });
        if (!isVisibleTo(caller, closed.owner)) throw new SessionNotFoundError(workflowId);
        return mayHoldToken(caller, closed.owner) ? closed.response : closed.withheld;
      }
      const description = await visibleSession(workflowId, caller, signal);
      const response = create(GetResponseSchema, {
        workflowId,
        runId: description.runId,
        status: STATUS_BY_EXECUTION[description.status.name] ?? SessionStatus.UNSPECIFIED,
        historyLength: BigInt(description.historyLength),
        startTime: timestampFromMs(description.startTime.getTime()),
        closeTime: description.closeTime ? timestampFromMs(description.closeTime.getTime()) : undefined,
      });
      // A closed run's answer is final once its outcome has been read.
      let final = description.closeTime !== undefined;
      if (description.status.name === "COMPLETED" || description.status.name === "FAILED") {
        const close = await readCloseEvent(workflowId, description.runId, signal);
        final &&= close !== undefined;
        if (close?.event.case === "completed" || close?.event.case === "rejected") {
          response.status = closedStatus(close.event.value);
          response.result = close.event.value;
        } else if (close?.event.case === "failed") {
          response.failure = close.event.value.reason;
        }
      }
      if (final) {
        const withheld = clone(GetResponseSchema, response);
        if (withheld.result) withholdToken(withheld.result);
        closedSessions.set(workflowId, { response: clone(GetResponseSchema, response), withheld, owner: ownerOf(description) });
      }
      if (response.result && !mayHoldToken(caller, ownerOf(description))) withholdToken(response.result);
      return response;
    },

    async *watch(workflowId, afterSequence, caller, signal) {
      const tokenAllowed = mayHoldToken(caller, await visibleOwner(workflowId, caller, signal));
      // Events up to the resume point are followed too (not sent): a terminal one ends the stream.
      for await (const event of feeds.follow(workflowId, signal)) {
        if (event.sequence <= afterSequence) continue;
        if (event.event.case === "completed" && !tokenAllowed) {
          const withheld = clone(WatchResponseSchema, event);
          withholdToken(withheld.event.value as SessionResult);
          yield withheld;
        } else {
          yield event;
        }
      }
    },

    async cancel(workflowId, caller, signal) {
      const session = await port.describe(workflowId, caller, signal);
      const answer = (status: SessionStatus) => create(CancelResponseSchema, { workflowId, runId: session.runId, status });
      if (session.status === SessionStatus.CANCELED) return answer(SessionStatus.CANCELED);
      if (session.status !== SessionStatus.RUNNING) throw new SessionFinishedError(workflowId, SessionStatus[session.status]);
      try {
        // Temporal records one cancellation request; asking again while it winds down changes nothing.
        await call("cancel", () => client.workflow.getHandle(workflowId, session.runId).cancel(), workflowId, signal);
      } catch (error) {
        if (!(error instanceof SessionNotFoundError)) throw error;
        // It ended between the describe and the request: answer as for a finished session.
        const ended = await port.describe(workflowId, caller, signal);
        if (ended.status === SessionStatus.CANCELED) return answer(SessionStatus.CANCELED);
        throw new SessionFinishedError(workflowId, SessionStatus[ended.status]);
      }
      return answer(SessionStatus.RUNNING);
    },

    async list(request, caller, signal) {
      if (caller.authenticated && request.tenant !== "" && request.tenant !== caller.tenant) throw new CallerMismatchError("tenant");
      if (!caller.authenticated && request.tenant === "") {
        throw new InvalidFieldError("tenant", "required when the API runs without authentication (with it, the tenant is the bearer token's)");
      }
      const tenant = caller.authenticated ? caller.tenant : request.tenant;
      if (!isListableTenant(tenant)) return create(ListResponseSchema);
      const query = visibilityQuery(tenant, caller.authenticated, request);
      const nextPageToken = unwrapPageToken(query, request.pageToken);
      let page: temporal.api.workflowservice.v1.ListWorkflowExecutionsResponse;
      try {
        page = await call(
          "list",
          () => connection.workflowService.listWorkflowExecutions({ namespace, query, pageSize: pageSize(request.pageSize), nextPageToken }),
          undefined,
          signal,
        );
      } catch (error) {
        // Temporal refuses a token it cannot read (ours passed its check only if Temporal wrote it: expired, or a server reset).
        if (nextPageToken && grpcCode(error) === GrpcStatus.INVALID_ARGUMENT) {
          throw new InvalidFieldError("page_token", "Temporal no longer accepts this page token; start again without page_token");
        }
        throw error;
      }
      const sessions = await Promise.all(page.executions.map(async (execution) => sessionSummary(execution, await summaryMemo(execution.memo))));
      return create(ListResponseSchema, { sessions, nextPageToken: wrapPageToken(query, page.nextPageToken) });
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
  return port;
}

/**
 * How a session's workflow is started: its id, the owner and summary memos,
 * the search attributes List filters on, and one run per id, ever (a second
 * start fails, and the existing run decides what the caller gets).
 */
export function sessionStartOptions(input: SessionInput, owner: SessionOwner, taskQueue: string) {
  return {
    taskQueue,
    workflowId: `${SESSION_WORKFLOW_ID_PREFIX}${input.sessionId}`,
    args: [input] as [SessionInput],
    memo: { [OWNER_MEMO_KEY]: owner, [SUMMARY_MEMO_KEY]: { model: input.model } },
    typedSearchAttributes: [
      { key: SEARCH_ATTRIBUTE.tenant, value: input.tenant },
      { key: SEARCH_ATTRIBUTE.tenantVerified, value: owner.authenticated },
      { key: SEARCH_ATTRIBUTE.sessionStatus, value: "RUNNING" },
    ],
    workflowIdConflictPolicy: "FAIL" as const,
    workflowIdReusePolicy: "REJECT_DUPLICATE" as const,
  };
}

function isSession(description: WorkflowExecutionDescription): boolean {
  return description.type === SESSION_WORKFLOW_TYPE;
}

/** The owner recorded at start; `undefined` for a session started before owners were recorded, or a malformed memo. */
function ownerOf(description: WorkflowExecutionDescription): SessionOwner | undefined {
  const value = description.memo?.[OWNER_MEMO_KEY] as Partial<SessionOwner> | undefined;
  if (typeof value?.tenant !== "string" || typeof value.user !== "string" || typeof value.authenticated !== "boolean") return undefined;
  return { tenant: value.tenant, user: value.user, authenticated: value.authenticated };
}

/**
 * The isolation rule: an anonymous caller (authentication off) sees every
 * session; an authenticated one only sessions an authenticated caller of its
 * own tenant started.
 */
function isVisibleTo(caller: SessionCaller, owner: SessionOwner | undefined): boolean {
  if (!caller.authenticated) return true;
  return owner !== undefined && owner.authenticated && owner.tenant === caller.tenant;
}

/** The raw session token goes to the session's own user only (to anyone when authentication is off). */
function mayHoldToken(caller: SessionCaller, owner: SessionOwner | undefined): boolean {
  if (!caller.authenticated) return true;
  return owner !== undefined && owner.authenticated && owner.tenant === caller.tenant && owner.user === caller.user;
}

/**
 * A repeated Start gets the existing run only when it comes from the same
 * tenant and user; an authenticated caller never gets a session an
 * unauthenticated one started. A session from before owners were recorded
 * is returned to unauthenticated callers only (as before), never to a token.
 */
function isRetryOf(starting: SessionOwner, existing: SessionOwner | undefined): boolean {
  if (existing === undefined) return !starting.authenticated;
  if (starting.authenticated && !existing.authenticated) return false;
  return existing.tenant === starting.tenant && existing.user === starting.user;
}

/** Keeps the token's claims, type and lifetime; drops the bearer token itself. */
function withholdToken(result: SessionResult): void {
  if (result.token) result.token.token = "";
}

/** The first gRPC error in the chain of causes. */
function grpcError(error: unknown): GrpcServiceError | undefined {
  for (let current = error; current; current = (current as { cause?: unknown }).cause) {
    if (isGrpcServiceError(current)) return current;
  }
  return undefined;
}

function grpcCode(error: unknown): number | undefined {
  return grpcError(error)?.code;
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
  if (error instanceof TemporalOverloadedError) return "overloaded";
  // A repeated Start meets its own earlier run: an answer, not a failure.
  if (error instanceof WorkflowExecutionAlreadyStartedError) return "already_started";
  return "error";
}
