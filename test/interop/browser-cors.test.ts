/**
 * The browser client's gRPC-Web calls cross origins only where the API's
 * `CORS_ALLOWED_ORIGINS` lets them. Needs only the API and Temporal: the
 * session's first event (`started`) is written when the workflow starts.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildBrowserClient } from "../../clients/browser/build.js";
import { runBrowserSession } from "./browser.js";
import { startInteropStack, type InteropStack } from "./stack.js";
import { startStaticServer, type StaticServer } from "./static-server.js";
import { repoRoot } from "./tools.js";

let stack: InteropStack;
let allowed: StaticServer;
let other: StaticServer;
let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "somagent-cors-"));
  await buildBrowserClient(scratch);
  allowed = await startStaticServer(scratch);
  other = await startStaticServer(scratch);
  stack = await startInteropStack({ corsAllowedOrigins: [allowed.origin] });
}, 180_000);
afterAll(async () => {
  await stack?.close();
  await allowed?.close();
  await other?.close();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

const pageUrl = (origin: string, sessionId: string) =>
  `${origin}/index.html?api=${encodeURIComponent(stack.baseUrl)}&session_id=${sessionId}&autostart=1`;

describe("browser client over gRPC-Web across origins", () => {
  it("starts a session and streams its first event into the page from an allowed origin", async () => {
    const page = await runBrowserSession(
      pageUrl(allowed.origin, "sess-cors-allowed"),
      join(repoRoot, "out", "interop", "browser-cors-allowed.png"),
      "#events li",
    );
    expect(page.error).toBe("");
    expect(page.workflowId).toBe("session-sess-cors-allowed");
    expect(page.kinds[0]).toBe("started");
    expect(page.sequences[0]).toBe(1);
  });

  it("is refused by the browser from an origin the API does not allow", async () => {
    const page = await runBrowserSession(
      pageUrl(other.origin, "sess-cors-other"),
      join(repoRoot, "out", "interop", "browser-cors-refused.png"),
    );
    expect(page.state).toBe("error");
    expect(page.workflowId).toBe("");
    expect(page.kinds).toEqual([]);
    expect(page.error).toMatch(/fetch/i);
    // The preflight was refused, so Start never reached the service.
    expect((await fetch(`${stack.baseUrl}/v1/sessions/session-sess-cors-other`)).status).toBe(404);
  });
});
