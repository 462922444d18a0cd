import { describe, expect, it } from "vitest";
import { decodePathValue, matchPathTemplate, parsePathTemplate, type TemplateSegment } from "../../src/api/path-template.js";

const literal = (value: string): TemplateSegment => ({ kind: "literal", value });
const wildcard: TemplateSegment = { kind: "wildcard" };
const deep: TemplateSegment = { kind: "deep-wildcard" };

describe("parsePathTemplate", () => {
  it.each([
    ["/v1/sessions/start", [literal("v1"), literal("sessions"), literal("start")], [], ""],
    ["/v1/sessions/{workflow_id}", [literal("v1"), literal("sessions"), wildcard], [{ fieldPath: "workflow_id", start: 2, end: 3, multiSegment: false }], ""],
    ["/v1/sessions/{workflow_id}:watch", [literal("v1"), literal("sessions"), wildcard], [{ fieldPath: "workflow_id", start: 2, end: 3, multiSegment: false }], "watch"],
    ["/v1/sessions:batchGet", [literal("v1"), literal("sessions")], [], "batchGet"],
    ["/v1/{name=shelves/*/books/*}", [literal("v1"), literal("shelves"), wildcard, literal("books"), wildcard], [{ fieldPath: "name", start: 1, end: 5, multiSegment: true }], ""],
    ["/v1/{book.name=shelves/*}/x", [literal("v1"), literal("shelves"), wildcard, literal("x")], [{ fieldPath: "book.name", start: 1, end: 3, multiSegment: true }], ""],
    ["/v1/files/{path=**}", [literal("v1"), literal("files"), deep], [{ fieldPath: "path", start: 2, end: 3, multiSegment: true }], ""],
    ["/v1/*/x/**:get", [literal("v1"), wildcard, literal("x"), deep], [], "get"],
    ["/v1/{a}/{b}", [literal("v1"), wildcard, wildcard], [{ fieldPath: "a", start: 1, end: 2, multiSegment: false }, { fieldPath: "b", start: 2, end: 3, multiSegment: false }], ""],
    ["/v1/a:b/c", [literal("v1"), literal("a:b"), literal("c")], [], ""],
    ["/v1/{id}:a:b", [literal("v1"), wildcard], [{ fieldPath: "id", start: 1, end: 2, multiSegment: false }], "a:b"],
  ])("parses %s into segments, variables and verb", (text, segments, variables, verb) => {
    expect(parsePathTemplate(text)).toEqual({ text, segments, variables, verb });
  });

  it.each([
    ["v1/sessions", 'must start with "/"'],
    ["/v1/{id", 'without "}"'],
    ["/v1/{a={b}}", "variables cannot nest"],
    ["/v1/{1abc}", "is not a field path"],
    ["/v1/{a}/{a}", "field a is bound twice"],
    ["/v1//x", "empty or not a literal"],
    ["/v1/a*b", "empty or not a literal"],
    ["/v1/**/x", '"**" must be the last segment'],
    ["/v1/x:", "is not a literal"],
    ["/v1/x}", 'unexpected "}"'],
  ])("refuses %s (%s)", (text, problem) => {
    expect(() => parsePathTemplate(text)).toThrow(problem);
    expect(() => parsePathTemplate(text)).toThrow(JSON.stringify(text));
  });
});

describe("matchPathTemplate", () => {
  it.each([
    ["/v1/sessions/start", "/v1/sessions/start", {}],
    ["/v1/sessions/start", "/v1/sessions/stop", undefined],
    ["/v1/sessions/start", "/v1/sessions/start/", undefined],
    ["/v1/sessions/{workflow_id}", "/v1/sessions/session-a", { workflow_id: "session-a" }],
    ["/v1/sessions/{workflow_id}", "/v1/sessions/", undefined],
    ["/v1/sessions/{workflow_id}", "/v1/sessions/a/b", undefined],
    // Without a verb in the template, a `:` stays part of the last segment.
    ["/v1/sessions/{workflow_id}", "/v1/sessions/a:watch", { workflow_id: "a:watch" }],
    ["/v1/sessions/{workflow_id}:watch", "/v1/sessions/a:watch", { workflow_id: "a" }],
    ["/v1/sessions/{workflow_id}:watch", "/v1/sessions/a", undefined],
    ["/v1/sessions/{workflow_id}:watch", "/v1/sessions/a:cancel", undefined],
    ["/v1/sessions/{workflow_id}:watch", "/v1/sessions/:watch", undefined],
    ["/v1/sessions/{workflow_id}:watch", "/v1/sessions/a:b:watch", { workflow_id: "a:b" }],
    ["/v1/sessions:batchGet", "/v1/sessions:batchGet", {}],
    ["/v1/{name=shelves/*/books/*}", "/v1/shelves/s1/books/b%2F1", { name: "shelves/s1/books/b%2F1" }],
    ["/v1/{name=shelves/*/books/*}", "/v1/shelves/s1/notes/b1", undefined],
    ["/v1/files/{path=**}", "/v1/files/a/b/c", { path: "a/b/c" }],
    ["/v1/files/{path=**}", "/v1/files", { path: "" }],
    ["/v1/files/{path=**}:get", "/v1/files/a/b:get", { path: "a/b" }],
    ["/v1/{a}/{b}", "/v1/x/y", { a: "x", b: "y" }],
    ["/v1/sessions/start", "v1/sessions/start", undefined],
  ])("matches %s against %s", (template, path, expected) => {
    const values = matchPathTemplate(parsePathTemplate(template), path);
    expect(values === undefined ? undefined : Object.fromEntries(values)).toEqual(expected);
  });

  it("recovers the values it was given from any path built from a template (seeded fuzz)", () => {
    // A small deterministic generator: the same cases on every run, reproducible from the seed.
    let seed = 0x5eed;
    const next = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const alphabet = "abcXYZ019-_.~:@ /%?#é";
    const value = () => Array.from({ length: 1 + next(8) }, () => alphabet[next(alphabet.length)]).join("");
    for (let i = 0; i < 500; i += 1) {
      const names = Array.from({ length: 1 + next(3) }, (_, k) => `f${k}`);
      const verb = next(2) === 0 ? "" : "go";
      const template = parsePathTemplate(`/v1/${names.map((n) => `lit${n}/{${n}}`).join("/")}${verb ? `:${verb}` : ""}`);
      const values = Object.fromEntries(names.map((n) => [n, value()]));
      const path = `/v1/${names.map((n) => `lit${n}/${encodeURIComponent(values[n] as string)}`).join("/")}${verb ? `:${verb}` : ""}`;
      const matched = matchPathTemplate(template, path);
      expect(matched, path).toBeDefined();
      const decoded = Object.fromEntries([...(matched as Map<string, string>)].map(([k, v]) => [k, decodePathValue(v, false)]));
      expect(decoded, path).toEqual(values);
    }
  });
});

describe("decodePathValue", () => {
  it.each([
    ["session-a", false, "session-a"],
    ["a%20b%3Ac", false, "a b:c"],
    ["a%2Fb", false, "a/b"],
    ["shelves/s%201/books/b%2F1", true, "shelves/s 1/books/b%2F1"],
    ["x%2fy", true, "x%2fy"],
  ])("decodes %s (multi-segment: %s) to %s", (raw, multiSegment, expected) => {
    expect(decodePathValue(raw, multiSegment)).toBe(expected);
  });

  it("throws URIError on a malformed escape", () => {
    expect(() => decodePathValue("%zz", false)).toThrow(URIError);
    expect(() => decodePathValue("a/%zz", true)).toThrow(URIError);
  });
});
