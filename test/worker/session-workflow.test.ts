/**
 * The session worker against the run's real Temporal dev server, with the
 * clients `npm run worker` wires pointed at a closed loopback port
 * (connection refused): the path of a dependency that stays down. Without
 * Kafka brokers configured, audit events are logged.
 */
import { randomUUID } from "node:crypto";
import { Client, Connection, WorkflowFailedError } from "@temporalio/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../src/shared/logger.js";
import { createMetricsRegistry } from "../../src/shared/metrics.js";
import { loadWorkerConfig } from "../../src/config.js";
import { createEncryptionCodec } from "../../src/temporal/payload-codec.js";
import { ACTIVITY, SESSION_WORKFLOW_TYPE, type SessionInput } from "../../src/workflows/contract.js";
import { createWorkerDependencies, type WorkerDependencies } from "../../src/worker/dependencies.js";
import { createSessionWorker, type SessionWorker } from "../../src/worker/session-worker.js";
import { freePort } from "../../local/processes.js";
import { infra } from "../support/infra.js";
import { waitFor } from "../support/wait-for.js";
import { cliHistory, closingRetryState, fixtureCodecKey, recordHistory, startedAttempts } from "./histories.js";
import { TEST_CLIENT } from "../companions/start-companions.js";

const temporal = infra().temporal;
let worker: SessionWorker;
let dependencies: WorkerDependencies;
let client: Client;
let connection: Connection;
const logLines: string[] = [];
/** How many times the unreachable-policy session tried the engine before its budget ran out. */
let policyAttempts = 0;
const taskQueue = `sessions-${randomUUID()}`;
beforeAll(async () => {
  // Nothing listens here: every outside service is down.
  const closed = `http://127.0.0.1:${await freePort()}`;
  const config = loadWorkerConfig({
    TEMPORAL_TARGET_HOST: temporal.address,
    TEMPORAL_TASK_QUEUE: taskQueue,
    PAYLOAD_CODEC_KEYS: `${fixtureCodecKey.id}:${fixtureCodecKey.key}`,
    POLICY_ENGINE_URL: `${closed}/v1/evaluate`,
    POLICY_ENGINE_TIMEOUT_MS: "2000",
    // The shortest budget the 2 s call admits (2 s + 5 s per attempt) plus one backoff: the step ends in seconds.
    POLICY_ENGINE_RETRY_BUDGET_MS: "8000",
    IDENTITY_SERVICE_CLIENT_ID: TEST_CLIENT.id,
    IDENTITY_SERVICE_CLIENT_SECRET: TEST_CLIENT.secret,
    IDENTITY_SERVICE_URL: `${closed}/v1/tokens/issue`,
    RAY_DASHBOARD_URL: closed,
    RAY_SERVE_URL: closed,
    WORKER_METRICS_HOST: "127.0.0.1",
    WORKER_METRICS_PORT: "0",
  });
  const logger = createLogger("worker-test", (line) => logLines.push(line));
  const registry = createMetricsRegistry();
  dependencies = createWorkerDependencies(config, registry, logger);
  worker = await createSessionWorker(config, { ...dependencies, logger, registry });
  connection = await Connection.connect({ address: temporal.address });
  client = new Client({
    connection,
    taskQueue,
    dataConverter: { payloadCodecs: [createEncryptionCodec(config.temporal.codecKeys)] },
  } as ConstructorParameters<typeof Client>[0]);
}, 120_000);

afterAll(async () => {
  await worker?.stop();
  await dependencies?.close();
  await connection?.close();
});

describe("session worker", () => {
  it("answers /health while polling", async () => {
    const response = await fetch(new URL("/health", worker.metricsUrl));
    expect(response.status).toBe(200);
  });

  it("fails a session whose policy engine stays unreachable, with one failed audit naming the reason", async () => {
    const sessionId = randomUUID();
    const input: SessionInput = {
      sessionId,
      tenant: "acme",
      user: "user-1",
      prompt: "a distinctive prompt 7c1f0e",
      model: "somagent-demo",
      metadata: {},
    };
    const handle = await client.workflow.start(SESSION_WORKFLOW_TYPE, {
      taskQueue,
      workflowId: `session-${sessionId}`,
      args: [input],
    });
    const error = await handle.result().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkflowFailedError);
    expect((error as WorkflowFailedError).cause?.message).toMatch(/^policy engine unreachable after its retry budget: policy-engine: /);
    // Ended by POLICY_ENGINE_RETRY_BUDGET_MS (schedule-to-close), not by a count of attempts.
    expect(await closingRetryState(handle, ACTIVITY.evaluatePolicy)).toBe("RETRY_STATE_TIMEOUT");
    policyAttempts = (await startedAttempts(handle, ACTIVITY.evaluatePolicy))[0] ?? 0;
    expect(policyAttempts).toBeGreaterThan(1);
    const audits = logLines
      .map((line) => JSON.parse(line) as { message: string; audit?: { session_id: string; status: string; reason: string } })
      .filter((line) => line.message === "audit event" && line.audit?.session_id === sessionId);
    expect(audits).toHaveLength(1);
    await recordHistory(handle, "failed-policy-unreachable");
    const shown = cliHistory(handle.workflowId);
    expect(shown).toContain(Buffer.from("binary/encrypted").toString("base64"));
    expect(shown).not.toContain("a distinctive prompt 7c1f0e");
    expect(audits[0]?.audit).toMatchObject({ status: "AUDIT_STATUS_FAILED", reason: expect.stringMatching(/^policy engine unreachable/) });
  }, 120_000);

  it("never runs a session started without the codec (plaintext input at the Temporal frontend): its workflow task fails naming the refusal", async () => {
    const plain = new Client({ connection });
    const sessionId = randomUUID();
    const forged: SessionInput = { sessionId, tenant: "bad tenant!", user: "u", prompt: "never validated", model: "somagent-demo", metadata: {} };
    const handle = await plain.workflow.start(SESSION_WORKFLOW_TYPE, { taskQueue, workflowId: `session-${sessionId}`, args: [forged] });
    try {
      const failedTask = async () => (await handle.fetchHistory()).events?.find((event) => event.workflowTaskFailedEventAttributes)?.workflowTaskFailedEventAttributes;
      await waitFor("the refused workflow task", async () => (await failedTask()) != null, 30_000);
      expect((await failedTask())?.failure?.message).toMatch(/refusing an unencrypted payload \(encoding "json\/plain"\)/);
      const events = (await handle.fetchHistory()).events ?? [];
      expect(events.some((event) => event.activityTaskScheduledEventAttributes)).toBe(false);
      expect((await handle.describe()).status.name).toBe("RUNNING");
    } finally {
      await handle.terminate("test over");
    }
  });

  it("shows on /metrics the calls its clients made, measured on the registry it was given", async () => {
    const text = await (await fetch(new URL("/metrics", worker.metricsUrl))).text();
    // The session above: its attempts at the policy engine, all refused, and one audit event logged.
    expect(text).toContain(`somagent_outbound_requests_total{target="policy-engine",outcome="transient"} ${policyAttempts}`);
    expect(text).toContain('somagent_audit_publishes_total{outcome="logged"} 1');
    expect(text).toContain("process_cpu_user_seconds_total");
  });
});
