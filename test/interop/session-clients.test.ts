/**
 * Every promised kind of caller runs a whole session against the running
 * service (Temporal, the API and the worker as real processes): the Go and
 * Python programs built on the generated gRPC stubs, the browser client over
 * gRPC-Web from another origin, and curl on the REST Watch stream.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildBrowserClient } from "../../clients/browser/build.js";
import { runBrowserSession } from "./browser.js";
import { linesOf, runClient } from "./run-client.js";
import { startInteropStack, type InteropStack } from "./stack.js";
import { startStaticServer, type StaticServer } from "./static-server.js";
import { repoRoot, tools } from "./tools.js";

/** The events of a session the policy allows, in the order the workflow produces them (proto field names). */
const completedSession = ["started", "policy_evaluated", "token_issued", "completion_generated", "audit_emitted", "completed"];
/** The same as protobuf-es oneof cases and proto JSON names (lowerCamelCase). */
const completedSessionCamel = completedSession.map((name) => name.replace(/_([a-z])/g, (_, letter: string) => letter.toUpperCase()));

let stack: InteropStack;
let site: StaticServer;
let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "somagent-interop-"));
  await buildBrowserClient(join(scratch, "browser"));
  site = await startStaticServer(join(scratch, "browser"));
  stack = await startInteropStack({ corsAllowedOrigins: [site.origin] });
}, 180_000);
afterAll(async () => {
  await stack?.close();
  await site?.close();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

/** `event <sequence> <kind> <json>` lines as [sequence, kind] pairs. */
function events(stdout: string): { sequence: number; kind: string }[] {
  return linesOf(stdout, "event").map((line) => {
    const [sequence, kind] = line.split(" ");
    return { sequence: Number(sequence), kind: kind ?? "" };
  });
}

function expectIncreasing(sequences: number[]): void {
  expect(sequences).toEqual([...sequences].sort((a, b) => a - b));
  expect(new Set(sequences).size).toBe(sequences.length);
}

describe("Go client (protoc-gen-go + protoc-gen-go-grpc stubs)", () => {
  it("starts a session, gets it and watches it to COMPLETED over gRPC", async () => {
    const binary = join(scratch, "session-demo");
    const build = await runClient(tools.go, ["build", "-o", binary, "./cmd/session-demo"], { cwd: join(repoRoot, "clients", "go") });
    // Exit code only: a first build prints the module downloads on stderr.
    expect(build.code, build.stderr).toBe(0);
    const run = await runClient(binary, ["-addr", stack.address, "-session-id", "sess-go"]);
    expect(run.stderr, stack.logs.join("\n")).toBe("");
    expect(run.code).toBe(0);
    expect(linesOf(run.stdout, "started")[0]).toMatch(/^session-sess-go [0-9a-f-]{36}$/);
    expect(linesOf(run.stdout, "get")[0]).toMatch(/^SESSION_STATUS_(RUNNING|COMPLETED)$/);
    const watched = events(run.stdout);
    expect(watched.map((e) => e.kind)).toEqual(completedSession);
    expectIncreasing(watched.map((e) => e.sequence));
    expect(linesOf(run.stdout, "final")).toEqual(["SESSION_STATUS_COMPLETED"]);
    expect(linesOf(run.stdout, "completion")[0]).not.toBe("");
  });
});

describe("Python client (grpcio-tools stubs)", () => {
  it("starts a session, watches it to COMPLETED and prints NOT_FOUND for an unknown one", async () => {
    const run = await runClient(tools.python, ["session_demo.py", "--addr", stack.address, "--session-id", "sess-py"], {
      cwd: join(repoRoot, "clients", "python"),
    });
    expect(run.stderr, stack.logs.join("\n")).toBe("");
    expect(run.code).toBe(0);
    expect(linesOf(run.stdout, "started")[0]).toMatch(/^session-sess-py [0-9a-f-]{36}$/);
    const watched = events(run.stdout);
    expect(watched.map((e) => e.kind)).toEqual(completedSession);
    expectIncreasing(watched.map((e) => e.sequence));
    expect(linesOf(run.stdout, "final")).toEqual(["SESSION_STATUS_COMPLETED"]);
    expect(linesOf(run.stdout, "missing")).toEqual(["NOT_FOUND session session-does-not-exist not found"]);
  });
});

describe("browser client (connect-web gRPC-Web in headless Chromium)", () => {
  it("streams the session's events into the page from another origin through CORS and shows COMPLETED", async () => {
    const url = `${site.origin}/index.html?api=${encodeURIComponent(stack.baseUrl)}&session_id=sess-browser&autostart=1`;
    const page = await runBrowserSession(url, join(repoRoot, "out", "interop", "browser-session.png"));
    expect(page.error, stack.logs.join("\n")).toBe("");
    expect(page.state).toBe("done");
    expect(page.workflowId).toBe("session-sess-browser");
    expect(page.kinds).toEqual(completedSessionCamel);
    expectIncreasing(page.sequences);
    // protobuf-es drops the enum prefix from TypeScript names.
    expect(page.status).toBe("COMPLETED");
    expect(page.completion).not.toBe("");
  });
});

describe("curl on the REST Watch stream", () => {
  it("receives every event as server-sent events with the sequence as id, then the end event", async () => {
    const start = await runClient(tools.curl, [
      "-sS", "-X", "POST", `${stack.baseUrl}/v1/sessions/start`, "-H", "Content-Type: application/json",
      "-d", '{"tenant":"tenant-demo","user":"user-demo","prompt":"kick off a demo","metadata":{"session_id":"sess-sse"}}',
    ]);
    expect(start.code).toBe(0);
    const run = await runClient(tools.curl, ["-sS", "-N", `${stack.baseUrl}/v1/sessions/session-sess-sse:watch`]);
    expect(run.code).toBe(0);
    const frames = run.stdout.split("\n\n").filter((frame) => frame.trim() !== "");
    const parsed = frames.map((frame) => {
      const field = (name: string) => frame.split("\n").find((line) => line.startsWith(`${name}:`))?.slice(name.length + 1).trim();
      return { id: field("id"), event: field("event") ?? "message", data: field("data") };
    });
    expect(parsed.at(-1)?.event).toBe("end");
    const messages = parsed.filter((p) => p.event === "message");
    const kinds = messages.map((m) => Object.keys(JSON.parse(m.data ?? "{}") as object).find((k) => k !== "sequence" && k !== "time"));
    expect(kinds).toEqual(completedSession);
    expect(messages.map((m) => m.id)).toEqual(messages.map((m) => (JSON.parse(m.data ?? "{}") as { sequence: string }).sequence));
    expectIncreasing(messages.map((m) => Number(m.id)));
  });
});

describe("grpcurl on the gRPC Watch stream", () => {
  it("streams every event of a session to its terminal event through reflection", async () => {
    const grpcurl = (...args: string[]) => runClient(tools.grpcurl, ["-plaintext", "-max-time", "120", ...args]);
    const start = await grpcurl(
      "-d",
      '{"tenant":"tenant-demo","user":"user-demo","prompt":"kick off a demo","metadata":{"session_id":"sess-grpcurl-watch"}}',
      stack.address,
      "somagent.orchestrator.v1.SessionService/Start",
    );
    expect(start.code).toBe(0);
    const run = await grpcurl("-format-error", "-d", '{"workflow_id":"session-sess-grpcurl-watch"}', stack.address, "somagent.orchestrator.v1.SessionService/Watch");
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    // grpcurl prints one pretty JSON object per message, separated by newlines between "}" and "{".
    const messages = run.stdout.trim().split(/\n(?=\{)/).map((text) => JSON.parse(text) as Record<string, unknown>);
    const kinds = messages.map((m) => Object.keys(m).find((k) => k !== "sequence" && k !== "time"));
    expect(kinds).toEqual(completedSessionCamel);
    expectIncreasing(messages.map((m) => Number(m.sequence)));
  });
});
