/**
 * The Temporal Web UI shows a session's input decrypted, as an operator opens
 * it: a dev server with its UI started with `--ui-codec-endpoint` at the API's
 * `/codec` (as `npm start` does), the API on the same Temporal, one session
 * started through the API, and the UI's workflow page in headless Chromium,
 * which decodes the payloads by calling the API across origins.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path, { join } from "node:path";
import { chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../local/processes.js";
import { startTemporal, type TemporalServer } from "../../local/temporal.js";
import { createServer, type ApiServer } from "../../src/api/server.js";
import { createMetricsRegistry } from "../../src/shared/metrics.js";
import { createTemporalConnection, type TemporalConnection } from "../../src/temporal/connection.js";
import { createTemporalSessionPort } from "../../src/temporal/session-port.js";
import { createLogger } from "../../src/shared/logger.js";
import { infra } from "../support/infra.js";
import { repoRoot, tools } from "./tools.js";

const SESSION_ID = `ui-${randomUUID().slice(0, 8)}`;
const PROMPT = `kick off a demo ${randomUUID().slice(0, 8)}`;
let stateDir: string;
let temporal: TemporalServer;
let connection: TemporalConnection;
let api: ApiServer;
let apiUrl: string;

beforeAll(async () => {
  stateDir = await mkdtemp(path.join(tmpdir(), "somagent-ui-"));
  const apiPort = await freePort();
  apiUrl = `http://127.0.0.1:${apiPort}`;
  temporal = await startTemporal({ binary: infra().temporal.binary, stateDir, ui: true, uiCodecEndpoint: `${apiUrl}/codec` });
  connection = createTemporalConnection({
    address: { host: "127.0.0.1", port: temporal.port },
    namespace: "default",
    taskQueue: `ui-test-${randomBytes(4).toString("hex")}`,
    codecKeys: [{ id: "ui-test", key: randomBytes(32) }],
  });
  const registry = createMetricsRegistry({ processMetrics: false });
  api = createServer({
    sessions: createTemporalSessionPort(connection, registry),
    registry,
    corsAllowedOrigins: [],
    shutdownGraceMs: 5_000,
    logger: createLogger("temporal-ui-test-api", () => {}),
    codecEndpoint: { codec: connection.codec, namespace: "default", allowedOrigins: [temporal.uiUrl?.origin ?? ""] },
  });
  await api.listen(apiPort);
  const started = await fetch(`${apiUrl}/v1/sessions/start`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ tenant: "tenant-demo", user: "user-demo", prompt: PROMPT, metadata: { session_id: SESSION_ID } }),
  });
  expect(started.status).toBe(200);
}, 120_000);

afterAll(async () => {
  await api?.shutdown();
  await connection?.close();
  await temporal?.stop();
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
});

describe("the Temporal Web UI with the API's codec endpoint", () => {
  it("shows the session's input decrypted on its workflow page", async () => {
    const browser = await chromium.launch({
      executablePath: tools.chromium,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update"],
    });
    try {
      const page = await browser.newPage();
      const codecCalls: number[] = [];
      page.on("response", (response) => {
        if (response.url().startsWith(`${apiUrl}/codec/decode`)) codecCalls.push(response.status());
      });
      await page.goto(`${temporal.uiUrl?.origin}/namespaces/default/workflows/session-${SESSION_ID}`);
      await page.getByText(PROMPT).first().waitFor({ timeout: 60_000 });
      await page.screenshot({ path: join(repoRoot, "out", "interop", "temporal-ui-codec.png"), fullPage: true });
      expect(codecCalls.length).toBeGreaterThan(0);
      expect(codecCalls.every((status) => status === 200)).toBe(true);
    } finally {
      await browser.close();
    }
  }, 120_000);
});
