/**
 * The session console as the API serves it at `/`: the built files only,
 * with their content types, a strict Content-Security-Policy, validators,
 * gzip and safe caching; any other path is left to the API's routes.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildConsole } from "../../console/build.js";
import { CONSOLE_CONTENT_SECURITY_POLICY, ConsoleNotBuiltError, readConsoleFiles } from "../../src/api/console-route.js";
import { startApiFixture, type ApiFixture } from "./api-fixture.js";

let built: string;
let api: ApiFixture;
let scriptPath: string;
beforeAll(async () => {
  built = await mkdtemp(join(tmpdir(), "somagent-console-"));
  await buildConsole(built);
  api = await startApiFixture({ consoleFiles: readConsoleFiles(built) });
  const script = /src="(main-[A-Z0-9]{8}\.js)"/.exec(await readFile(join(built, "index.html"), "utf8"))?.[1];
  if (!script) throw new Error("the built index.html names no hashed script");
  scriptPath = `/${script}`;
}, 120_000);
afterAll(async () => {
  await api?.close();
  if (built) await rm(built, { recursive: true, force: true });
});

/** One HTTP/1.1 request with the target sent exactly as given (fetch would normalise `..`). */
function rawRequest(method: string, target: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const request = http.request({ host: "127.0.0.1", port: api.port, method, path: target, headers, agent: false }, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) }));
      response.on("error", reject);
    });
    request.on("error", reject);
    request.end();
  });
}

describe("the session console route", () => {
  it("serves the page at / with a strict Content-Security-Policy and revalidation", async () => {
    const page = await rawRequest("GET", "/");
    expect(page.status).toBe(200);
    expect(page.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(page.headers["content-security-policy"]).toBe(CONSOLE_CONTENT_SECURITY_POLICY);
    expect(CONSOLE_CONTENT_SECURITY_POLICY).not.toMatch(/unsafe|\*|data:/);
    expect(page.headers["x-content-type-options"]).toBe("nosniff");
    expect(page.headers["cache-control"]).toBe("no-cache");
    expect(page.headers.etag).toMatch(/^"[A-Za-z0-9_-]+"$/);
    expect(page.body.toString()).toBe(await readFile(join(built, "index.html"), "utf8"));
    expect((await rawRequest("GET", "/index.html")).body.equals(page.body)).toBe(true);
  });

  it("lets browsers keep the content-hashed script for good, gzipped when they accept it", async () => {
    const script = await rawRequest("GET", scriptPath, { "accept-encoding": "gzip, deflate, br" });
    expect(script.status).toBe(200);
    expect(script.headers["content-type"]).toBe("text/javascript; charset=utf-8");
    expect(script.headers["cache-control"]).toBe("public, max-age=31536000, immutable");
    expect(script.headers["content-encoding"]).toBe("gzip");
    expect(script.headers.vary).toBe("Accept-Encoding");
    const original = await readFile(join(built, scriptPath.slice(1)));
    expect(gunzipSync(script.body).equals(original)).toBe(true);
    expect(script.body.length).toBeLessThan(original.length / 2);

    const plain = await rawRequest("GET", scriptPath, { "accept-encoding": "gzip;q=0, identity" });
    expect(plain.headers["content-encoding"]).toBeUndefined();
    expect(plain.body.equals(original)).toBe(true);
    expect(plain.headers.etag).not.toBe(script.headers.etag);
  });

  it("answers 304 to a request naming the current ETag, and HEAD without a body", async () => {
    const first = await rawRequest("GET", "/");
    const again = await rawRequest("GET", "/", { "if-none-match": `W/${first.headers.etag}` });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
    expect(again.headers["content-security-policy"]).toBe(CONSOLE_CONTENT_SECURITY_POLICY);

    const head = await rawRequest("HEAD", "/favicon.svg");
    expect(head.status).toBe(200);
    expect(head.headers["content-type"]).toBe("image/svg+xml");
    expect(Number(head.headers["content-length"])).toBe((await readFile(join(built, "favicon.svg"))).length);
    expect(head.body.length).toBe(0);
  });

  it("keeps the HTTP/1.1 connection open for the page's next request", async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const sockets = new Set<unknown>();
      for (const path of ["/", scriptPath, "/favicon.svg"]) {
        await new Promise<void>((resolve, reject) => {
          http
            .get({ host: "127.0.0.1", port: api.port, path, agent }, (response) => {
              sockets.add(response.socket);
              expect(response.headers.connection).toBe("keep-alive");
              response.resume().on("end", resolve);
            })
            .on("error", reject);
        });
      }
      expect(sockets.size).toBe(1);
    } finally {
      agent.destroy();
    }
  });

  it("refuses other methods on its paths with 405 and Allow", async () => {
    const posted = await rawRequest("POST", "/");
    expect(posted.status).toBe(405);
    expect(posted.headers.allow).toBe("GET, HEAD");
    expect(JSON.parse(posted.body.toString())).toMatchObject({ code: 12 });
  });

  it.each(["/../package.json", "/%2e%2e/package.json", "/..%2fpackage.json", "/index.html/../../package.json", "//etc/passwd", "/console.css", "/main.js", "/.%2e/.%2e/src/config.ts"])(
    "serves nothing outside the built files for %s",
    async (target) => {
      const answer = await rawRequest("GET", target);
      expect(answer.status).toBe(404);
      expect(answer.headers["content-type"]).toBe("application/json; charset=utf-8");
      expect(answer.body.toString()).not.toContain("somagent-orchestrator\",");
    },
  );

  it("leaves the API's own routes alone", async () => {
    expect((await rawRequest("GET", "/health")).status).toBe(200);
    expect((await rawRequest("GET", "/v1/sessions/session-console-unknown")).status).toBe(404);
  });

  it("refuses at start-up a directory with no built console", async () => {
    const empty = await mkdtemp(join(tmpdir(), "somagent-console-empty-"));
    try {
      expect(() => readConsoleFiles(empty)).toThrow(ConsoleNotBuiltError);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});
