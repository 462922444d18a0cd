/**
 * The session console in Chromium against the whole stack (policy engine,
 * identity service, worker and API as processes, with caller authentication
 * on, over the run's real Temporal, Kafka and Ray): a pasted token, a session
 * started and followed to its completion, a second one whose timeline resumes
 * after a reload, a third cancelled while it runs, and the tenant's sessions
 * listed. The second and third stay running because the worker is stopped
 * until the reload or the cancel is done: the test waits for states, never
 * for time.
 */
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildConsole } from "../../console/build.js";
import { identityServiceSigningKey, signCallerToken } from "../../local/caller-token.js";
import type { Component } from "../../local/processes.js";
import { secretEnvironments, startService, startServices, type Services } from "../../local/services.js";
import { identityKeyDir } from "../../local/state-dir.js";
import { infraEndpoints } from "../support/infra.js";
import { waitFor } from "../support/wait-for.js";
import { launchChromium } from "./browser.js";
import { repoRoot } from "./tools.js";

// A tenant and user the local identity service knows (its default-users.json), so their sessions are issued tokens.
const TENANT = "tenant-demo";
const USER = "user-demo";
const screenshots = join(repoRoot, "out", "interop");
/** The events of a session the policy allows, as oneof cases (the timeline's `data-kind`). */
const completedSession = ["started", "policyEvaluated", "tokenIssued", "completionGenerated", "auditEmitted", "completed"];

let scratch: string;
let services: Services;
let codecKeys: string;
let restartedWorker: Component | undefined;
let browser: Browser;
let page: Page;
/** What the page reported as broken: uncaught errors and console errors (a CSP violation is one). */
const pageProblems: string[] = [];
/** The workflow ids of the sessions this test started, in order. */
const startedHere: string[] = [];
/** The request bodies of the page's Watch calls, in order. */
const watchRequests: unknown[] = [];

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "somagent-console-"));
  await buildConsole(join(scratch, "console"));
  await mkdir(join(scratch, "state"));
  codecKeys = `console:${randomBytes(32).toString("base64")}`;
  services = await startServices(infraEndpoints(), {
    stateDir: join(scratch, "state"),
    codecKeys,
    taskQueue: `console-${randomBytes(4).toString("hex")}`,
    apiAuth: "jwt",
    env: { API_CONSOLE_DIR: join(scratch, "console") },
  });
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  page.on("pageerror", (error) => pageProblems.push(error.message));
  page.on("console", (message) => {
    if (message.type() === "error") pageProblems.push(message.text());
  });
  page.on("request", (request) => {
    // A Connect streaming request is one enveloped message: a flags byte, a 4-byte length, then the JSON.
    const body = request.url().endsWith("/somagent.orchestrator.v1.SessionService/Watch") ? request.postDataBuffer() : null;
    if (body) watchRequests.push(JSON.parse(body.subarray(5).toString("utf8")));
  });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await restartedWorker?.stop();
  await services?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

const timelineKinds = () => page.locator("#timeline li[data-kind]").evaluateAll((items) => items.map((item) => item.getAttribute("data-kind")));
const timelineSequences = async () =>
  (await page.locator("#timeline li[data-sequence]").evaluateAll((items) => items.map((item) => item.getAttribute("data-sequence")))).map(Number);
const text = async (selector: string) => (await page.locator(selector).textContent()) ?? "";

/** Clicks Refresh until the sessions table shows `workflowId` in `status` (List reads Temporal's visibility, which lags a little). */
async function listedWithStatus(workflowId: string, status: string): Promise<void> {
  await waitFor(`${workflowId} listed as ${status}`, async () => {
    await page.getByRole("button", { name: "Refresh" }).click();
    return (await page.locator(`#session-rows tr[data-workflow-id="${workflowId}"][data-status="${status}"]`).count()) === 1;
  }, 60_000);
}

async function stopWorker(): Promise<void> {
  if (restartedWorker) await restartedWorker.stop();
  else await services.worker.daemon.stop();
}

/** Starts the worker again, as the stack started it (its environment and its own secrets). */
async function startWorker(): Promise<void> {
  const ownSecrets = secretEnvironments({ ...services.secrets, codecKeys, rayAuthToken: infraEndpoints().rayAuthToken }).worker;
  restartedWorker = await startService("worker", "src/worker/main.ts", services.worker.url, "/health", { ...services.env, ...ownSecrets }, join(scratch, "state"));
}

/** Starts a session from the form; resolves with its workflow id once the console has opened it and shows its first event. */
async function startSession(prompt: string): Promise<string> {
  const before = await text("#workflow");
  await page.getByLabel("Prompt").fill(prompt);
  await page.getByRole("button", { name: "Start session" }).click();
  await waitFor("the new session opened with its first event", async () =>
    (await text("#workflow")) !== before && (await page.locator("#timeline li[data-kind=started]").count()) === 1 && (await page.locator("#status").getAttribute("data-status")) !== null,
    90_000,
  );
  const workflowId = await text("#workflow");
  startedHere.push(workflowId);
  return workflowId;
}

describe("the session console in Chromium", () => {
  it("starts a session with a pasted token and shows its events arrive through its completion", async () => {
    await page.goto(`${services.api.url.origin}/`);
    // With authentication on and no token yet, the console says what is missing.
    await page.waitForSelector("#error:not(:empty)", { timeout: 60_000 });
    expect(await text("#error")).toMatch(/paste a token/);

    const token = await signCallerToken(identityServiceSigningKey(identityKeyDir(join(scratch, "state"))), { tenant: TENANT, user: USER });
    await page.getByLabel("Bearer token").fill(token);
    await page.getByRole("button", { name: "Use token" }).click();
    expect(await page.getByLabel("Tenant").inputValue()).toBe(TENANT);
    expect(await page.getByLabel("User").inputValue()).toBe(USER);
    expect(await page.getByLabel("Tenant").getAttribute("readonly")).not.toBeNull();

    const workflowId = await startSession("Summarise the quarterly report");
    await page.waitForSelector("#session[data-state=ended]", { timeout: 90_000 });
    expect(await text("#error")).toBe("");
    expect(await timelineKinds()).toEqual(completedSession);
    const sequences = await timelineSequences();
    expect(sequences).toEqual([...sequences].sort((a, b) => a - b));
    expect(new Set(sequences).size).toBe(sequences.length);
    expect(await page.locator("#status").getAttribute("data-status")).toBe("COMPLETED");
    expect(await text("#completion")).not.toBe("");
    expect(page.url()).toBe(`${services.api.url.origin}/#${workflowId}`);
    await page.screenshot({ path: join(screenshots, "console-completed.png"), fullPage: true });
  });

  it("resumes a running session's timeline after a reload from the last sequence, without a gap or a repeat", async () => {
    // Without a worker the session stays running after its first event.
    await stopWorker();
    const workflowId = await startSession("Draft the release notes");
    expect(await page.locator("#status").getAttribute("data-status")).toBe("RUNNING");
    expect(await timelineKinds()).toEqual(["started"]);
    const [firstSequence] = await timelineSequences();

    watchRequests.length = 0;
    await page.reload();
    await page.waitForSelector(`#timeline li.marker[data-resumed-after="${firstSequence}"]`);
    await waitFor("the Watch call after the reload", () => watchRequests.length > 0, 60_000);
    expect(watchRequests[0]).toEqual({ workflowId, afterSequence: String(firstSequence) });
    expect(await timelineKinds()).toEqual(["started"]);

    await startWorker();
    await page.waitForSelector("#session[data-state=ended]", { timeout: 90_000 });
    expect(await timelineKinds()).toEqual(completedSession);
    const sequences = await timelineSequences();
    expect(sequences[0]).toBe(firstSequence);
    expect(new Set(sequences).size).toBe(sequences.length);
    expect(sequences).toEqual([...sequences].sort((a, b) => a - b));
    expect(await page.locator("#timeline li.marker + li").getAttribute("data-kind")).toBe("policyEvaluated");
    expect(await page.locator("#status").getAttribute("data-status")).toBe("COMPLETED");
    await page.screenshot({ path: join(screenshots, "console-resumed.png"), fullPage: true });
  });

  it("cancels a running session: Watch ends with canceled, the status says so", async () => {
    await stopWorker();
    await startSession("Plan the offsite");
    expect(await page.locator("#status").getAttribute("data-status")).toBe("RUNNING");
    await page.getByRole("button", { name: "Cancel session" }).click();
    await page.locator("#status", { hasText: /^canceling$/ }).waitFor({ timeout: 60_000 });

    // The worker, back, finds the cancellation recorded and winds the session down.
    await startWorker();
    await page.waitForSelector("#session[data-state=ended]", { timeout: 90_000 });
    const kinds = await timelineKinds();
    expect(kinds[0]).toBe("started");
    expect(kinds.at(-1)).toBe("canceled");
    expect(kinds).not.toContain("completed");
    expect(await page.locator("#status").getAttribute("data-status")).toBe("CANCELED");
    expect(await page.getByRole("button", { name: "Cancel session" }).isDisabled()).toBe(true);
    expect(await text("#error")).toBe("");
  });

  it("lists the tenant's sessions with their status, the most recently finished first", async () => {
    const canceled = await text("#workflow");
    await listedWithStatus(canceled, "CANCELED");
    // Other tests of the run may list sessions of the same tenant: only this test's three are checked, in order.
    const listed = await page.locator("#session-rows tr").evaluateAll((items) => items.map((item) => [item.getAttribute("data-workflow-id"), item.getAttribute("data-status")]));
    expect(listed.filter(([workflowId]) => startedHere.includes(workflowId ?? ""))).toEqual([
      [startedHere[2], "CANCELED"],
      [startedHere[1], "COMPLETED"],
      [startedHere[0], "COMPLETED"],
    ]);
    const row = page.locator(`#session-rows tr[data-workflow-id="${canceled}"]`);
    expect(await row.locator("td").nth(1).textContent()).toBe(USER);
    expect(await row.getByRole("link").getAttribute("href")).toBe(`#${canceled}`);
    await page.screenshot({ path: join(screenshots, "console-listed.png"), fullPage: true });
  });

  it("ran without a script error or a Content-Security-Policy violation", () => {
    // The one expected console error: the first List, refused before the token was given.
    expect(pageProblems.filter((problem) => !/401/.test(problem))).toEqual([]);
  });
});
