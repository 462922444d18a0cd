/**
 * The floors each pair compares the API against: the bare thing underneath,
 * driven by the bench itself on the same servers.
 */
import { randomBytes } from "node:crypto";
import http2 from "node:http2";
import path from "node:path";
import { Client, Connection } from "@temporalio/client";
import { NativeConnection, Worker } from "@temporalio/worker";
import { Kafka, logLevel } from "kafkajs";
import { SESSION_WORKFLOW_ID_PREFIX, SESSION_WORKFLOW_TYPE, type SessionInput } from "../src/workflows/contract.js";
import { createEncryptionCodec } from "../src/temporal/payload-codec.js";
import { OWNER_MEMO_KEY } from "../src/temporal/session-port.js";
import type { NoOpActivities } from "./bare-workflow.js";
import type { Answer, Call } from "./protocol-calls.js";

/**
 * A raw SDK client starting sessions the way the API's session port does:
 * same workflow type, task queue, id policy, owner memo and an AES-GCM payload
 * codec (with a key of its own), so only the API's own layers differ.
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
      await client.workflow.start(SESSION_WORKFLOW_TYPE, {
        taskQueue,
        workflowId: `${SESSION_WORKFLOW_ID_PREFIX}${sessionId}`,
        args: [input],
        memo: { [OWNER_MEMO_KEY]: { tenant: input.tenant, user: input.user, authenticated: false } },
        workflowIdConflictPolicy: "FAIL",
        workflowIdReusePolicy: "REJECT_DUPLICATE",
      });
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
 * A plain `node:http2` server answering each call with the bytes the API
 * answered it (headers, body, trailers): the floor of a cheap RPC.
 */
export interface RecordedAnswers {
  url: string;
  stop(): Promise<void>;
}

export async function serveRecordedAnswers(answers: ReadonlyArray<{ call: Call; answer: Answer }>): Promise<RecordedAnswers> {
  const key = (method: string, path: string, contentType: string | undefined) => `${method} ${path} ${contentType ?? ""}`;
  const byCall = new Map(answers.map(({ call, answer }) => [key(call.method, call.path, call.headers["content-type"]), answer]));
  const server = http2.createServer();
  server.on("stream", (stream, headers) => {
    const answer = byCall.get(key(String(headers[":method"]), String(headers[":path"]), headers["content-type"]));
    stream.on("data", () => {});
    stream.on("end", () => {
      if (!answer) {
        stream.respond({ ":status": 404 }, { endStream: true });
        return;
      }
      const trailers = withoutPseudo(answer.trailers);
      const hasTrailers = Object.keys(trailers).length > 0;
      stream.respond({ ...withoutPseudo(answer.headers), ":status": Number(answer.headers[":status"]) }, { waitForTrailers: hasTrailers });
      if (hasTrailers) stream.once("wantTrailers", () => stream.sendTrailers(trailers));
      stream.end(answer.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
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
