/**
 * The tools the README runs through npm, as a user runs them: `npm run -s
 * grpcurl`, `npx buf curl` and `npm run -s temporal` against the running
 * service and its Temporal, and `npm run -s audit:tail` against the run's Kafka after one
 * session ended; and the services' logs, which must carry no warning.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { infra } from "../support/infra.js";
import { runClient } from "./run-client.js";
import { startInteropStack, type InteropStack } from "./stack.js";
import { repoRoot } from "./tools.js";

let stack: InteropStack;
const SESSION_ID = `sess-npm-tools-${randomUUID().slice(0, 8)}`;
const WORKFLOW_ID = `session-${SESSION_ID}`;

beforeAll(async () => {
  stack = await startInteropStack();
}, 120_000);
afterAll(async () => {
  await stack?.close();
});

const npmRun = (script: string, args: string[], env: NodeJS.ProcessEnv = {}) => runClient("npm", ["run", "-s", script, "--", ...args], { cwd: repoRoot, env });

describe("npm run grpcurl", () => {
  it("lists the services through reflection", async () => {
    const run = await npmRun("grpcurl", ["-plaintext", stack.address, "list"]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout.split("\n")).toEqual(expect.arrayContaining(["somagent.orchestrator.v1.SessionService", "grpc.health.v1.Health"]));
  });

  it("starts a session and follows it to its end", async () => {
    const start = await npmRun("grpcurl", [
      "-plaintext",
      "-d",
      JSON.stringify({ tenant: "tenant-demo", user: "user-demo", prompt: "kick off a demo", metadata: { session_id: SESSION_ID } }),
      stack.address,
      "somagent.orchestrator.v1.SessionService/Start",
    ]);
    expect(start.code, start.stderr).toBe(0);
    expect(JSON.parse(start.stdout)).toMatchObject({ workflowId: WORKFLOW_ID });
    const watch = await npmRun("grpcurl", ["-plaintext", "-max-time", "120", "-d", JSON.stringify({ workflow_id: WORKFLOW_ID }), stack.address, "somagent.orchestrator.v1.SessionService/Watch"]);
    expect(watch.code, `${watch.stderr}\n${stack.logs.join("\n")}`).toBe(0);
    expect(watch.stdout).toContain('"completed"');
  }, 180_000);
});

describe("npx buf curl", () => {
  const bufCurl = (...args: string[]) => runClient("npx", ["buf", "curl", ...args], { cwd: repoRoot });

  it("lists the services through reflection", async () => {
    const run = await bufCurl("--http2-prior-knowledge", "--list-services", stack.baseUrl);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.split("\n")).toEqual(expect.arrayContaining(["somagent.orchestrator.v1.SessionService"]));
  });

  it("gets the session over gRPC and over Connect", async () => {
    const body = JSON.stringify({ workflow_id: WORKFLOW_ID });
    const url = `${stack.baseUrl}/somagent.orchestrator.v1.SessionService/Get`;
    for (const protocol of [["--protocol", "grpc", "--http2-prior-knowledge"], ["--protocol", "connect"]]) {
      const run = await bufCurl(...protocol, "-d", body, url);
      expect(run.code, run.stderr).toBe(0);
      expect(JSON.parse(run.stdout)).toMatchObject({ workflowId: WORKFLOW_ID, status: "SESSION_STATUS_COMPLETED" });
    }
  });
});

describe("npm run temporal", () => {
  it("shows the session's history decrypted through the API's codec endpoint", async () => {
    const run = await npmRun("temporal", [
      "workflow", "show", "--address", infra().temporal.address, "--workflow-id", WORKFLOW_ID,
      "--codec-endpoint", `${stack.baseUrl}/codec`, "--output", "json",
    ]);
    expect(run.code, run.stderr).toBe(0);
    type Payload = { metadata: { encoding: string }; data: string };
    const history = JSON.parse(run.stdout) as { events: { workflowExecutionStartedEventAttributes?: { input: { payloads: Payload[] } } }[] };
    const [input] = history.events[0]?.workflowExecutionStartedEventAttributes?.input.payloads ?? [];
    // The CLI prints payloads as proto JSON: their bytes in base64.
    expect(Buffer.from(input?.metadata.encoding ?? "", "base64").toString()).toBe("json/plain");
    expect(JSON.parse(Buffer.from(input?.data ?? "", "base64").toString())).toMatchObject({ sessionId: SESSION_ID, prompt: "kick off a demo" });
  });
});

describe("npm run audit:tail", () => {
  it("prints the audit topic from the beginning, one JSON event per line, and exits at its end", async () => {
    const run = await npmRun("audit:tail", [], { KAFKA_BOOTSTRAP_SERVERS: infra().kafka.bootstrap });
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const events = run.stdout.trimEnd().split("\n").map((line) => JSON.parse(line) as { session_id?: string; workflow_id?: string; status?: string });
    expect(events.filter((event) => event.workflow_id === WORKFLOW_ID)).toEqual([expect.objectContaining({ session_id: SESSION_ID, status: "AUDIT_STATUS_ACCEPTED" })]);
  }, 120_000);

  it("names the broker when it cannot reach it", async () => {
    const run = await npmRun("audit:tail", [], { KAFKA_BOOTSTRAP_SERVERS: "127.0.0.1:1" });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("cannot read the audit topic at 127.0.0.1:1");
  }, 120_000);
});

describe("a clean start", () => {
  it("leaves no Node or kafkajs warning in the services' logs after a session", () => {
    const logs = stack.logs.join("\n");
    expect(logs).not.toMatch(/\(node:\d+\) \w*Warning/);
    expect(logs).not.toContain("switched default partitioner");
  });
});
