/**
 * The worker process's log, as an operator reads it: `npm run worker`'s entry
 * point started as a child process against the run's real Temporal, Kafka and
 * Ray and real companions, at LOG_LEVEL=debug so the Temporal SDK's own lines
 * (each activity's completion) are in it too. Everything it writes to stdout
 * and stderr must be one JSON object a line in our format.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { randomUUID } from "node:crypto";
import { Client, Connection } from "@temporalio/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../local/processes.js";
import { LOG_LEVELS } from "../../src/shared/logger.js";
import { createEncryptionCodec } from "../../src/temporal/payload-codec.js";
import { ACTIVITY, SESSION_WORKFLOW_TYPE, type SessionInput, type SessionWorkflowResult } from "../../src/workflows/contract.js";
import { loadWorkerConfig } from "../../src/config.js";
import { startIdentityService, startPolicyEngine, TEST_CLIENT, temporaryDirectory, type StartedCompanion } from "../companions/start-companions.js";
import { infra } from "../support/infra.js";
import { waitFor } from "../support/wait-for.js";
import { sessionFailure, sessionInput } from "./sessions.js";
import { testWorkerEnv } from "./worker-config.js";

const { temporal, ray } = infra();
const taskQueue = `worker-logs-${randomUUID()}`;

let policyEngine: StartedCompanion;
let identityService: StartedCompanion;
let keyDir: ReturnType<typeof temporaryDirectory>;
let worker: ChildProcessWithoutNullStreams;
let workerExit: Promise<number | null>;
let env: Record<string, string>;
let connection: Connection;
let client: Client;
/** Everything the worker wrote, stdout and stderr, as it arrived. */
let output = "";

/** One log line as written. */
interface LogLine {
  time: string;
  level: string;
  message: string;
  service: string;
  session_id?: string;
  workflow_id?: string;
  activityType?: string;
  error?: { type?: string; message?: string; stack?: string };
  [field: string]: unknown;
}

function lines(): string[] {
  return output.split("\n").filter((line) => line !== "");
}

function parsed(): LogLine[] {
  return lines().map((line) => {
    try {
      return JSON.parse(line) as LogLine;
    } catch {
      throw new Error(`not a JSON line: ${line}`);
    }
  });
}

function startSession(input: SessionInput) {
  return client.workflow.start(SESSION_WORKFLOW_TYPE, { taskQueue, workflowId: `session-${input.sessionId}`, args: [input] });
}

beforeAll(async () => {
  keyDir = temporaryDirectory("identity-keys");
  policyEngine = await startPolicyEngine();
  identityService = await startIdentityService(keyDir.path);
  env = {
    ...testWorkerEnv({
      temporalAddress: temporal.address,
      taskQueue,
      policyEngine: policyEngine.url,
      identityService: identityService.url,
      auditTopic: `agent.audit.test-${randomUUID()}`,
      ray,
    }),
    WORKER_SDK_METRICS_PORT: String(await freePort()),
    LOG_LEVEL: "debug",
  };
  worker = spawn(process.execPath, ["--import", "tsx", "src/worker/main.ts"], { env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"] });
  workerExit = new Promise((resolve) => worker.once("exit", (code) => resolve(code)));
  worker.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  worker.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  await waitFor("the worker logging that it started", () => output.includes('"message":"worker started"') || worker.exitCode !== null, 120_000);
  expect(worker.exitCode, output).toBeNull();
  connection = await Connection.connect({ address: temporal.address });
  const codecKeys = loadWorkerConfig(env).temporal.codecKeys;
  client = new Client({ connection, dataConverter: { payloadCodecs: [createEncryptionCodec(codecKeys)] } });
}, 180_000);

afterAll(async () => {
  if (worker && worker.exitCode === null) {
    worker.kill("SIGTERM");
    await workerExit;
  }
  await connection?.close();
  await identityService?.close();
  await policyEngine?.close();
  keyDir?.remove();
}, 60_000);

/** Sum of the samples of `name` whose labels include `labels`, from a Prometheus text endpoint. */
async function sample(metricsUrl: URL, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  let sum = 0;
  for (const line of text.split("\n")) {
    const match = /^(\w+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (match?.[1] !== name) continue;
    const found = Object.fromEntries([...(match[2] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([key, value]) => found[key] === value)) sum += Number(match[3]);
  }
  return sum;
}

// One session completed and one refused by the identity service (user-readonly), on a fresh worker: its counters start at zero.
const completed = sessionInput();
const refused = sessionInput({ user: "user-readonly" });
let result: SessionWorkflowResult;

describe("worker process", () => {
  it("counts on /metrics the sessions ended by status, the calls by dependency and the audit publishes", async () => {
    result = (await (await startSession(completed)).result()) as SessionWorkflowResult;
    await sessionFailure(await startSession(refused));
    const started = parsed().find((r) => r.message === "worker started");
    const metrics = new URL("/metrics", String(started?.metrics));

    expect(await sample(metrics, "somagent_sessions_ended_total", { status: "accepted" })).toBe(1);
    expect(await sample(metrics, "somagent_sessions_ended_total", { status: "failed" })).toBe(1);
    expect(await sample(metrics, "somagent_audit_publishes_total", { outcome: "published" })).toBe(2);
    expect(await sample(metrics, "somagent_audit_publish_duration_seconds_count")).toBe(2);
    expect(await sample(metrics, "somagent_outbound_requests_total", { target: "policy-engine" })).toBe(2);
    expect(await sample(metrics, "somagent_outbound_requests_total", { target: "identity-service" })).toBe(2);
    expect(await sample(metrics, "somagent_outbound_request_duration_seconds_count", { target: "identity-service" })).toBe(2);
    expect(await sample(metrics, "somagent_outbound_requests_total", { target: "ray-serve" })).toBeGreaterThanOrEqual(1);
  });

  it("writes one JSON line per record in one format, a refusal as one line without a stack, and no token or secret", async () => {
    worker.kill("SIGTERM");
    expect(await workerExit).toBe(0);

    const records = parsed(); // throws on any line that is not JSON
    expect(records.length).toBeGreaterThan(0);
    for (const record of records) {
      expect(record).toMatchObject({ service: "somagent-orchestrator-worker", message: expect.any(String) });
      expect(LOG_LEVELS).toContain(record.level);
      expect(new Date(record.time).toISOString()).toBe(record.time);
    }

    // The SDK's activity lines carry the session, and its attributes as fields (the local activity reading the budgets too).
    const completedActivities = records.filter((r) => r.session_id === completed.sessionId && r.message === "Activity completed");
    expect(completedActivities.map((r) => r.activityType).sort()).toEqual(
      [ACTIVITY.readSessionTimeouts, ACTIVITY.evaluatePolicy, ACTIVITY.issueIdentityToken, ACTIVITY.runSlmCompletion, ACTIVITY.emitAuditEvent].sort(),
    );
    expect(completedActivities[0]).toMatchObject({ workflow_id: `session-${completed.sessionId}`, taskQueue });

    // The refusal: one line, its reason, no stack.
    const refusedFailures = records.filter((r) => r.session_id === refused.sessionId && r.level !== "debug" && r.level !== "info");
    expect(refusedFailures, JSON.stringify(refusedFailures, null, 1)).toHaveLength(1);
    expect(refusedFailures[0]).toMatchObject({
      level: "warn",
      message: "Activity failed",
      activityType: ACTIVITY.issueIdentityToken,
      workflow_id: `session-${refused.sessionId}`,
      error: { type: "PermanentCallError", message: expect.stringMatching(/^identity-service: answered 403: /) },
    });
    // The session's end is an outcome (info), and no line of the refused session carries a stack.
    const refusedLines = records.filter((r) => r.session_id === refused.sessionId);
    expect(refusedLines).toContainEqual(expect.objectContaining({ level: "info", message: "Workflow failed", error: { type: "ApplicationFailure", message: expect.any(String) } }));
    expect(refusedLines.filter((r) => r.error?.stack !== undefined)).toEqual([]);

    // Nothing secret: the issued token, the worker's client secret, the codec key, the activity task tokens.
    const token = result.token?.token ?? "";
    expect(token).not.toBe("");
    const codecKey = env.PAYLOAD_CODEC_KEYS!.split(":")[1]!;
    for (const secret of [token, TEST_CLIENT.secret, codecKey, env.RAY_AUTH_TOKEN ?? ""].filter((s) => s !== "")) expect(output).not.toContain(secret);
    expect(records.some((r) => "taskToken" in r)).toBe(false);
  });
});
