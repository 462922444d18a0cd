/**
 * The shared JSON service through plain fetch against real servers on loopback
 * port 0: what it adds to its routes (health, metrics, the error writer). The
 * companions' tests cover the same service behind their own routes.
 */
import { afterEach, describe, expect, it } from "vitest";
import { FieldError, HttpError } from "../../src/shared/http/errors.js";
import { createJsonService, type JsonServiceOptions, type Route } from "../../src/shared/http/json-service.js";
import { createLogger } from "../../src/shared/logger.js";
import { createMetricsRegistry } from "../../src/shared/metrics.js";

const closers: (() => Promise<void>)[] = [];

afterEach(async () => {
  while (closers.length > 0) await closers.pop()?.();
});

async function start(routes: Route[], options: Partial<JsonServiceOptions> = {}): Promise<{ url: URL; logs: string[] }> {
  const logs: string[] = [];
  const service = createJsonService({
    routes,
    registry: createMetricsRegistry({ processMetrics: false }),
    logger: createLogger("json-service-test", (line) => logs.push(line)),
    ...options,
  });
  const url = await service.listen(0, "127.0.0.1");
  closers.push(() => service.close());
  return { url, logs };
}

describe("createJsonService", () => {
  it("answers /health 200 while healthy and 503 unavailable while not", async () => {
    let healthy = true;
    const { url } = await start([], { healthy: () => healthy });
    const up = await fetch(new URL("/health", url));
    expect(up.status).toBe(200);
    expect(await up.json()).toEqual({ status: "ok" });
    healthy = false;
    const down = await fetch(new URL("/health", url));
    expect(down.status).toBe(503);
    expect(await down.json()).toEqual({ status: "unavailable" });
  });

  it("exposes the injected registry on /metrics, with the request counter only when given a prefix", async () => {
    const registry = createMetricsRegistry({ processMetrics: false });
    const counted = await start([], { registry, metricPrefix: "somagent_test" });
    await fetch(new URL("/health", counted.url));
    const text = await (await fetch(new URL("/metrics", counted.url))).text();
    expect(text).toMatch(/somagent_test_http_requests_total\{route="\/health",method="GET",status="200"\} 1/);
    expect(await registry.metrics()).toContain("somagent_test_http_requests_total");

    const uncounted = await start([]);
    await fetch(new URL("/health", uncounted.url));
    expect(await (await fetch(new URL("/metrics", uncounted.url))).text()).not.toContain("_http_requests_total");
  });

  it("sends a JSON string body quoted, text with its content type, and the route's status and headers", async () => {
    const { url } = await start([
      { method: "GET", path: "/string", handle: () => ({ json: "plain", status: 202, headers: { "cache-control": "no-store" } }) },
      { method: "GET", path: "/text", handle: () => ({ text: "a b c", contentType: "text/csv" }) },
    ]);
    const json = await fetch(new URL("/string", url));
    expect(json.status).toBe(202);
    expect(json.headers.get("cache-control")).toBe("no-store");
    expect(json.headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect(await json.text()).toBe('"plain"');
    const text = await fetch(new URL("/text", url));
    expect(text.headers.get("content-type")).toBe("text/csv");
    expect(await text.text()).toBe("a b c");
  });

  it("answers HttpError with its status, code and headers, FieldError as 400, anything else as 500 with a logged id", async () => {
    const { url, logs } = await start([
      { method: "POST", path: "/http-error", handle: () => Promise.reject(new HttpError(409, "taken", "name is taken", { "retry-after": "3" })) },
      { method: "POST", path: "/field-error", handle: () => Promise.reject(new FieldError("name", "must be a string")) },
      { method: "GET", path: "/crash/:what", handle: ({ params }) => Promise.reject(new Error(`secret detail ${params.what}`)) },
    ]);
    const post = (path: string) => fetch(new URL(path, url), { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    const taken = await post("/http-error");
    expect(taken.status).toBe(409);
    expect(taken.headers.get("retry-after")).toBe("3");
    expect(await taken.json()).toEqual({ error: "taken", message: "name is taken" });
    const field = await post("/field-error");
    expect(field.status).toBe(400);
    expect(await field.json()).toEqual({ error: "invalid_request", message: "name must be a string" });
    const crash = await fetch(new URL("/crash/x", url));
    expect(crash.status).toBe(500);
    const body = (await crash.json()) as { error: string; message: string };
    expect(body.error).toBe("internal");
    expect(body.message).not.toContain("secret");
    const errorId = body.message.split(" ").pop();
    const logged = logs.map((line) => JSON.parse(line) as Record<string, unknown>).find((line) => line.errorId === errorId);
    expect(logged).toMatchObject({ level: "error", route: "/crash/:what", error: "secret detail x" });
  });

  it("answers 400 for a path segment that is not validly URL-encoded, and keeps serving", async () => {
    const { url } = await start([{ method: "GET", path: "/items/:id", handle: ({ params }) => ({ json: params }) }]);
    const bad = await fetch(new URL("/items/%zz", url));
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toBe("invalid_request");
    expect(await (await fetch(new URL("/items/a%20b", url))).json()).toEqual({ id: "a b" });
  });
});
