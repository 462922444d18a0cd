/**
 * Sessions as a client sees them through the API over gRPC: start (retried
 * while the API or Temporal is down; Start is idempotent for its owner),
 * read until terminal, and Watch with resumption from the last sequence.
 */
import { randomUUID } from "node:crypto";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { SessionService, SessionStatus, type GetResponse } from "../../gen/somagent/orchestrator/v1/session_pb.js";
import { isTerminalEvent } from "../../src/temporal/session-events.js";
import { deferred, type Deferred } from "./deferred.js";

/** The demo tenant and user, whose sessions complete with the shipped companions' data. */
const DEMO = { tenant: "tenant-demo", user: "user-demo", prompt: "kick off a demo" } as const;

/** Failures a client retries: the API or Temporal is restarting. Anything else is a real answer. */
const RETRIED = new Set([Code.Unavailable, Code.DeadlineExceeded, Code.Internal, Code.Unknown, Code.Aborted, Code.Canceled]);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `call` until it succeeds or fails for good; retries what {@link RETRIED} lists, every 500 ms, until `deadline`. */
async function retried<T>(what: string, deadline: number, call: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      return await call();
    } catch (error) {
      const code = ConnectError.from(error).code;
      if (!RETRIED.has(code) || Date.now() > deadline) throw new Error(`${what}: ${ConnectError.from(error).message}`, { cause: error });
      await sleep(500);
    }
  }
}

/** A session's end as Get reports it. */
export interface SessionEnd {
  status: SessionStatus;
  failure: string;
  /** The raw session token Get returned (authentication is off: the caller sees it). */
  token: string;
}

/** The API as the suite's clients call it. */
export interface SessionClient {
  /** Starts a demo session with a fresh id (prefixed by `label`); returns its workflow id. */
  start(label: string, deadline: number): Promise<{ sessionId: string; workflowId: string }>;
  /** Polls Get until the session is no longer running, or `deadline` passes (then its last status, RUNNING). */
  waitForEnd(workflowId: string, deadline: number): Promise<SessionEnd>;
  /**
   * Watches one session to its terminal event, resuming with the last sequence
   * seen whenever the stream ends early or breaks; returns every sequence
   * received, in order, and how many times the client had to resume.
   */
  watchToEnd(workflowId: string, deadline: number): Promise<{ sequences: bigint[]; resumes: number }>;
  /** Resolves once `watchToEnd` of `workflowId` has received its first event. */
  firstEvent(workflowId: string): Promise<void>;
}

/** A gRPC client of the API at `apiUrl`. */
export function createSessionClient(apiUrl: URL): SessionClient {
  const client: Client<typeof SessionService> = createClient(SessionService, createGrpcTransport({ baseUrl: apiUrl.origin }));
  const firstEvents = new Map<string, Deferred<void>>();
  const firstEvent = (workflowId: string) => {
    let waiter = firstEvents.get(workflowId);
    if (!waiter) firstEvents.set(workflowId, (waiter = deferred()));
    return waiter;
  };

  return {
    async start(label, deadline) {
      const sessionId = `${label}-${randomUUID()}`;
      const started = await retried(`Start ${sessionId}`, deadline, () =>
        client.start({ ...DEMO, metadata: { session_id: sessionId } }, { timeoutMs: 15_000 }),
      );
      return { sessionId, workflowId: started.workflowId };
    },

    async waitForEnd(workflowId, deadline) {
      for (;;) {
        const answer: GetResponse = await retried(`Get ${workflowId}`, deadline, () => client.get({ workflowId }, { timeoutMs: 15_000 }));
        if (answer.status !== SessionStatus.RUNNING || Date.now() > deadline) {
          return {
            status: answer.status,
            failure: answer.failure,
            token: answer.result?.token?.token ?? "",
          };
        }
        await sleep(1_000);
      }
    },

    async watchToEnd(workflowId, deadline) {
      const sequences: bigint[] = [];
      let resumes = -1;
      for (;;) {
        resumes += 1;
        const after = sequences.at(-1) ?? 0n;
        try {
          for await (const event of client.watch({ workflowId, afterSequence: after })) {
            sequences.push(event.sequence);
            firstEvent(workflowId).resolve();
            if (isTerminalEvent(event)) return { sequences, resumes };
          }
        } catch (error) {
          if (!RETRIED.has(ConnectError.from(error).code)) throw error;
        }
        // The stream ended before the terminal event (the API drained) or broke: resume after the last sequence.
        if (Date.now() > deadline) throw new Error(`Watch ${workflowId}: no terminal event by the deadline (sequences ${sequences.join(",")})`);
        await sleep(500);
      }
    },

    firstEvent: (workflowId) => firstEvent(workflowId).promise,
  };
}
