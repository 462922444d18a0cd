/**
 * The OpenAPI document the API serves: generated from the proto by buf and
 * committed (CI regenerates it and fails on a difference), and describing
 * exactly the routes the REST transcoder builds from the same annotations.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { useApiFixture } from "./api-fixture.js";

const fixture = useApiFixture();

type OpenApi = { openapi: string; paths: Record<string, Record<string, { responses: Record<string, { content: Record<string, unknown> }> }>> };

describe("GET /openapi.json", () => {
  it("serves the committed OpenAPI 3 document", async () => {
    const response = await fetch(`${fixture().baseUrl}/openapi.json`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("application/json; charset=utf-8");
    const served = (await response.json()) as OpenApi;
    expect(served).toEqual(JSON.parse(readFileSync(new URL("../../openapi/openapi.json", import.meta.url), "utf8")));
    expect(served.openapi).toMatch(/^3\./);
  });

  it("has the same paths and methods as the REST transcoder's routes", async () => {
    const served = (await (await fetch(`${fixture().baseUrl}/openapi.json`)).json()) as OpenApi;
    const documented = Object.entries(served.paths).flatMap(([path, item]) => Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`));
    expect(documented.sort()).toEqual([...fixture().server.restRoutes].sort());
  });

  it("declares Watch as server-sent events, as the transcoder serves it", async () => {
    const served = (await (await fetch(`${fixture().baseUrl}/openapi.json`)).json()) as OpenApi;
    const watch = served.paths["/v1/sessions/{workflow_id}:watch"]?.get;
    expect(Object.keys(watch?.responses["200"]?.content ?? {})).toEqual(["text/event-stream"]);
  });
});
