/**
 * The floors each pair compares the API against: the bare thing underneath,
 * driven by the bench itself on the same servers.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import type http2 from "node:http2";
import os from "node:os";
import path from "node:path";
import { Client, Connection } from "@temporalio/client";
import { NativeConnection, Worker } from "@temporalio/worker";
import { Kafka, logLevel } from "kafkajs";
import { SESSION_WORKFLOW_TYPE, type SessionInput } from "../src/workflows/contract.js";
import { createEncryptionCodec } from "../src/temporal/payload-codec.js";
import { sessionStartOptions } from "../src/temporal/session-port.js";
import { freePort, portOpen, startDaemon, waitUntil } from "../local/processes.js";
import type { NoOpActivities } from "./bare-workflow.js";
import type { Answer, Call } from "./protocol-calls.js";
import type { RecordedAnswer } from "./recorded-answers-server.js";

/**
 * A raw SDK client starting sessions the way the API's session port does:
 * the same start options (id policy, memos, search attributes) and an AES-GCM
 * payload codec (with a key of its own), so only the API's own layers differ.
 */
export interface RawStarter {
  start(sessionId: string): Promise<void>;
  close(): Promise<void>;
}

export async function createRawStarter(temporalAddress: string, namespace: string, taskQueue: string): Promise<RawStarter> {
  const connection = await Connection.connect({ address: temporalAddress });
  const codec = createEncryptionCodec([{ id: "bench-raw", key: randomBytes(32) }]);
  const client = new Client({ connection, namespace, dataConverter: { payloadCodecs: [codec] } });
  return {
    async start(sessionId) {
      const input: SessionInput = { sessionId, tenant: "tenant-demo", user: "user-demo", prompt: "kick off a demo", model: "somagent-demo", metadata: { session_id: sessionId } };
      await client.workflow.start(SESSION_WORKFLOW_TYPE, sessionStartOptions(input, { tenant: input.tenant, user: input.user, authenticated: false }, taskQueue));
    },
    close: () => connection.close(),
  };
}

/** The bare session workflow run by an in-process worker on a task queue of its own. */
export interface BareSessions {
  /** Starts one bare workflow and resolves when it has completed. */
  run(id: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startBareSessions(temporalAddress: string, namespace: string): Promise<BareSessions> {
  const taskQueue = `bench.bare.${randomBytes(4).toString("hex")}`;
  const nativeConnection = await NativeConnection.connect({ address: temporalAddress });
  const noOp = async () => {};
  const activities: NoOpActivities = { first: noOp, second: noOp, third: noOp, fourth: noOp };
  const worker = await Worker.create({
    connection: nativeConnection,
    namespace,
    taskQueue,
    workflowsPath: path.join(import.meta.dirname, "bare-workflow.ts"),
    activities,
  });
  const running = worker.run();
  const connection = await Connection.connect({ address: temporalAddress });
  const client = new Client({ connection, namespace });
  return {
    async run(id) {
      await client.workflow.execute("bareSession", { taskQueue, workflowId: `bench-bare-${id}` });
    },
    async stop() {
      worker.shutdown();
      await running;
      await connection.close();
      await nativeConnection.close();
    },
  };
}

/**
 * P4's floor: `bench/recorded-answers-server.ts`, a plain `node:http2` server
 * answering each call with the bytes the API answered it (headers, body,
 * trailers), run as a child process with the same Node and flags as the API
 * (`--import tsx`), so the floor pays the same process scheduling as the API
 * instead of sharing the bench's event loop.
 */
export interface RecordedAnswers {
  url: string;
  stop(): Promise<void>;
}

export async function serveRecordedAnswers(answers: ReadonlyArray<{ call: Call; answer: Answer }>): Promise<RecordedAnswers> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "somagent-bench-floor-"));
  const answersFile = path.join(dir, "answers.json");
  const logFile = path.join(dir, "recorded-answers-server.log");
  const recorded: RecordedAnswer[] = answers.map(({ call, answer }) => ({
    method: call.method,
    path: call.path,
    contentType: call.headers["content-type"],
    headers: withoutPseudo(answer.headers),
    status: Number(answer.headers[":status"]),
    body: answer.body.toString("base64"),
    trailers: withoutPseudo(answer.trailers),
  }));
  await writeFile(answersFile, JSON.stringify(recorded));
  const port = await freePort();
  const daemon = await startDaemon("recorded-answers-server", process.execPath, ["--import", "tsx", path.join(import.meta.dirname, "recorded-answers-server.ts"), answersFile, String(port)], {
    cwd: path.resolve(import.meta.dirname, ".."),
    logFile,
  });
  const stop = async () => {
    await daemon.stop();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitUntil("recorded-answers-server", () => portOpen(port), { timeoutMs: 30_000, logFile, daemon });
  } catch (error) {
    await stop();
    throw error;
  }
  return { url: `http://127.0.0.1:${port}`, stop };
}

/** Headers to replay: pseudo-headers and per-connection ones are the server's own. */
function withoutPseudo(headers: http2.IncomingHttpHeaders): http2.OutgoingHttpHeaders {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !name.startsWith(":") && name !== "date" && name !== "content-length"));
}

/** The original audit design: a new kafkajs producer per event (connect, send with acks=all, disconnect). */
export function createProducerPerEvent(bootstrap: string, topic: string): (key: string, value: string) => Promise<void> {
  const kafka = new Kafka({ clientId: "bench-producer-per-event", brokers: bootstrap.split(","), logLevel: logLevel.WARN });
  return async (key, value) => {
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    await producer.connect();
    try {
      await producer.send({ topic, acks: -1, messages: [{ key, value }] });
    } finally {
      await producer.disconnect();
    }
  };
}
