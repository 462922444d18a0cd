/**
 * Sessions whose dependency stays down past its retry budget, on Temporal's
 * time-skipping test server (local/temporal-test-server.ts): the server jumps
 * its clock over the backoff timers and the schedule-to-close timeout, so a
 * two-minute budget runs out in seconds. Everything else is as in
 * session-outcomes.test.ts: the worker with the clients `npm run worker`
 * wires, a real Ray cluster of this file's own (stopped), the run's Kafka,
 * and the companion servers over HTTP. The server holds its clock while a
 * workflow or activity task is in flight, so no real call is cut short by a
 * jump.
 */
import { randomUUID } from "node:crypto";
import type { WorkflowHandle } from "@temporalio/client";
import proto from "@temporalio/proto";
import { TestWorkflowEnvironment } from "@temporalio/testing";
import { Kafka, logLevel, type Consumer } from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installTemporalTestServer } from "../../local/temporal-test-server.js";
import type { WorkerConfig } from "../../src/config.js";
import { createMetricsRegistry } from "../../src/shared/metrics.js";
import { createLogger } from "../../src/shared/logger.js";
import { createEncryptionCodec } from "../../src/temporal/payload-codec.js";
import { ACTIVITY, SEARCH_ATTRIBUTE, SESSION_WORKFLOW_TYPE, type SessionInput, type SessionWorkflowResult } from "../../src/workflows/contract.js";
import { createWorkerDependencies, type WorkerDependencies } from "../../src/worker/dependencies.js";
import { createSessionWorker, type SessionWorker } from "../../src/worker/session-worker.js";
import { startIdentityService, startPolicyEngine, temporaryDirectory, type StartedCompanion } from "../companions/start-companions.js";
import { startRayCluster, type RayTestCluster } from "../ray/ray-cluster.js";
import { infra } from "../support/infra.js";
import { closingRetryState, fixtureCodecKey, recordHistory, startedAttempts } from "./histories.js";
import { sessionFailure, sessionInput } from "./sessions.js";
import { testWorkerConfig } from "./worker-config.js";

const { kafka: kafkaInfo } = infra();
/** This file's own topic, so no other run's events are ever read. */
const auditTopic = `agent.audit.test-${randomUUID()}`;
const taskQueue = `sessions-retry-${randomUUID()}`;

let env: TestWorkflowEnvironment;
let policyEngine: StartedCompanion;
let identityService: StartedCompanion;
let keyDir: ReturnType<typeof temporaryDirectory>;
let ray: RayTestCluster | undefined;
let dependencies: WorkerDependencies | undefined;
let worker: SessionWorker | undefined;
let consumer: Consumer | undefined;
/** Audit records consumed from the file's topic: key (session id) and value as on the wire. */
const audits: { key: string; event: { status: string; reason?: string; token_claims?: { sub?: string } } }[] = [];

/** This file's worker configuration, pointed at the time-skipping test server. */
function workerConfig(cluster: RayTestCluster): WorkerConfig {
  return testWorkerConfig({
    temporalAddress: env.address,
    taskQueue,
    policyEngine: new URL(policyEngine.url),
    identityService: new URL(identityService.url),
    auditTopic,
    ray: cluster,
  });
}


function startSession(input: SessionInput): Promise<WorkflowHandle> {
  return env.client.workflow.start(SESSION_WORKFLOW_TYPE, { taskQueue, workflowId: `session-${input.sessionId}`, args: [input] });
}


/** The audit records of `sessionId` once `count` of them have been consumed (30 s at most). */
async function auditsOf(sessionId: string, count = 1): Promise<typeof audits> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const found = audits.filter((record) => record.key === sessionId);
    if (found.length >= count) return found;
    if (Date.now() > deadline) throw new Error(`audit records of ${sessionId}: ${found.length} of ${count} within 30 s`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

beforeAll(async () => {
  // One after the other: a failed install must not leave a started cluster unknown to afterAll.
  const testServer = await installTemporalTestServer();
  const cluster = (ray = await startRayCluster());
  keyDir = temporaryDirectory("identity-keys");
  policyEngine = await startPolicyEngine();
  identityService = await startIdentityService(keyDir.path);
  env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: "existing-path", path: testServer } },
    client: { dataConverter: { payloadCodecs: [createEncryptionCodec([{ id: fixtureCodecKey.id, key: Buffer.from(fixtureCodecKey.key, "base64") }])] } },
  });
  // The sessions' search attributes (the workflow records its status), as the dev server registers them at start.
  await env.connection.operatorService.addSearchAttributes({
    namespace: env.namespace ?? "default",
    searchAttributes: Object.fromEntries(
      Object.values(SEARCH_ATTRIBUTE).map(({ name, type }) => [name, proto.temporal.api.enums.v1.IndexedValueType[`INDEXED_VALUE_TYPE_${type}`]]),
    ),
  });
  const config = workerConfig(cluster);
  // The worker as src/worker/main.ts wires it.
  const registry = createMetricsRegistry();
  const logger = createLogger("session-retry-budgets-test", () => {});
  dependencies = createWorkerDependencies(config, registry, logger);
  worker = await createSessionWorker(config, { ...dependencies, logger, registry }); // creates the audit topic
  consumer = new Kafka({ clientId: "session-retry-budgets-test", brokers: [kafkaInfo.bootstrap], logLevel: logLevel.NOTHING }).consumer({
    groupId: `session-retry-budgets-${randomUUID()}`,
  });
  await consumer.connect();
  await consumer.subscribe({ topic: auditTopic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      audits.push({ key: message.key?.toString("utf8") ?? "", event: JSON.parse(message.value?.toString("utf8") ?? "{}") as (typeof audits)[number]["event"] });
    },
  });
}, 180_000);

afterAll(async () => {
  await consumer?.disconnect();
  await worker?.stop();
  await dependencies?.close();
  await env?.teardown();
  await ray?.stop();
  if (ray) expect(await ray.pids()).toEqual([]);
  await identityService?.close();
  await policyEngine?.close();
  keyDir?.remove();
}, 120_000);

describe("session-start-workflow past a retry budget, on the time-skipping test server", () => {
  it("fails a session, saying Ray was unreachable, when Ray stays down past the retry budget", async () => {
    // Ray up first: the worker's client has deployed and used the application before the outage.
    const first = (await (await startSession(sessionInput())).result()) as SessionWorkflowResult;
    expect(first.completion?.provider).toBe("builtin-deterministic");

    await ray!.stop();
    const input = sessionInput();
    const [startedAt, wallStartedAt] = [await env.currentTimeMs(), Date.now()];
    const handle = await startSession(input);
    const error = await sessionFailure(handle);
    const [serverElapsed, wallElapsed] = [(await env.currentTimeMs()) - startedAt, Date.now() - wallStartedAt];

    const reason = error.cause?.message ?? "";
    expect(reason).toMatch(/^Ray Serve unreachable after its retry budget: /);
    expect(reason).toMatch(/Ray (Serve|dashboard) is unreachable/);
    // The client's message names the URL it tried; the reason callers read (Get, Watch, audit) does not.
    expect(reason).toContain("<internal address>");
    expect(reason).not.toMatch(/https?:\/\/|127\.0\.0\.1|:\d{2,5}\b/);
    // The 120 s schedule-to-close budget ran out (Temporal gives up once the next 10 s backoff would overrun it)
    // on the server's clock, while far less time passed on ours.
    expect(await closingRetryState(handle, ACTIVITY.runSlmCompletion)).toBe("RETRY_STATE_TIMEOUT");
    expect(serverElapsed).toBeGreaterThanOrEqual(105_000);
    expect(wallElapsed).toBeLessThan(serverElapsed / 2);
    expect((await startedAttempts(handle, ACTIVITY.runSlmCompletion))[0]).toBeGreaterThan(5);
    const records = await auditsOf(input.sessionId);
    expect(records.map((r) => r.event.status)).toEqual(["AUDIT_STATUS_FAILED"]);
    expect(records[0]?.event).toMatchObject({ reason, token_claims: { sub: "user-demo" } });
    await recordHistory(handle, "failed-ray-unreachable");
  }, 120_000);
});
