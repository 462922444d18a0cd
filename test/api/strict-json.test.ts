import { describe, expect, it } from "vitest";
import { StrictJsonError, firstInvalidUtf8, parseStrictJson, walkJson } from "../../src/api/strict-json.js";

const utf8 = (text: string) => new TextEncoder().encode(text);
/** `before`, then the raw bytes, then `after`. */
const withBytes = (before: string, bytes: number[], after: string) => Uint8Array.from([...utf8(before), ...bytes, ...utf8(after)]);

describe("parseStrictJson", () => {
  it.each([
    ["an object", '{"tenant":"t","user":"u"}', { tenant: "t", user: "u" }],
    ["nested objects and arrays", '{"a":{"b":[1,{"c":2}]},"d":[]}', { a: { b: [1, { c: 2 }] }, d: [] }],
    ["the same key in sibling objects", '{"a":{"k":1},"b":{"k":2},"c":[{"k":1},{"k":2}]}', { a: { k: 1 }, b: { k: 2 }, c: [{ k: 1 }, { k: 2 }] }],
    ["a key equal to a value", '{"a":"b","b":"a"}', { a: "b", b: "a" }],
    ["four-byte characters", '{"prompt":"𝄞𝄞"}', { prompt: "𝄞𝄞" }],
    ["escaped quotes and braces in strings", '{"a":"x\\"}{,","b":"\\\\"}', { a: 'x"}{,', b: "\\" }],
    ["a scalar body", "42", 42],
  ])("accepts %s", (_case, text, expected) => {
    expect(parseStrictJson(utf8(text))).toEqual(expected);
  });

  it.each([
    ["a top-level duplicate", '{"tenant":"bad tenant!","tenant":"tenant-demo"}', "tenant"],
    ["a nested duplicate", '{"metadata":{"session_id":"a","session_id":"b"}}', "metadata.session_id"],
    ["a duplicate spelled with an escape", '{"tenant":"a","\\u0074enant":"b"}', "tenant"],
    ["a duplicate inside an array element", '{"items":[{"k":1},{"k":1,"k":2}]}', "items[1].k"],
    ["a duplicate after a nested object", '{"a":{"x":1},"b":2,"a":3}', "a"],
  ])("refuses %s, naming its path", (_case, text, field) => {
    const error = catchError(() => parseStrictJson(utf8(text)));
    expect(error).toBeInstanceOf(StrictJsonError);
    expect(error).toMatchObject({ field, message: `${field}: duplicate JSON key` });
  });

  it.each([
    ["a bad byte in a top-level string", withBytes('{"tenant":"t","prompt":"ab', [0xff], 'c"}'), "prompt", 26],
    ["a lone continuation byte", withBytes('{"user":"', [0x80], '"}'), "user", 9],
    ["an overlong encoding", withBytes('{"user":"', [0xc0, 0xaf], '"}'), "user", 9],
    ["an encoded surrogate", withBytes('{"user":"', [0xed, 0xa0, 0x80], '"}'), "user", 9],
    ["a truncated sequence", withBytes('{"metadata":{"k":"', [0xe2, 0x82], '"}}'), "metadata.k", 18],
    ["a bad byte in an array element", withBytes('{"tags":["a","', [0xfe], '"]}'), "tags[1]", 14],
    ["a bad byte in a key", withBytes('{"a":1,"', [0xff], '":2}'), "", 8],
  ])("refuses %s, naming the field and the byte offset", (_case, bytes, field, offset) => {
    const error = catchError(() => parseStrictJson(bytes));
    expect(error).toBeInstanceOf(StrictJsonError);
    expect(error).toMatchObject({ field, byteOffset: offset });
    expect((error as Error).message).toBe(`${field || "request body"}: invalid UTF-8 at byte ${offset}`);
  });

  it("leaves other syntax errors to JSON.parse", () => {
    expect(catchError(() => parseStrictJson(utf8('{"a":')))).toBeInstanceOf(SyntaxError);
  });
});

describe("firstInvalidUtf8", () => {
  it.each([
    [[], 0],
    [[0x41, 0x42], 2],
    [[0xf0, 0x9d, 0x84, 0x9e], 4],
    [[0x41, 0xf5, 0x80, 0x80, 0x80], 1],
    [[0xf4, 0x90, 0x80, 0x80], 0],
    [[0xe0, 0x80, 0x80], 0],
    [[0x41, 0xc3], 1],
  ])("finds the first bad byte of %j at %i", (bytes, offset) => {
    expect(firstInvalidUtf8(Uint8Array.from(bytes))).toBe(offset);
  });

  it("agrees with a fatal TextDecoder on every two-byte sequence", () => {
    const decoder = new TextDecoder("utf-8", { fatal: true });
    for (let a = 0; a < 256; a++) {
      for (let b = 0; b < 256; b++) {
        const bytes = Uint8Array.from([a, b]);
        let valid = true;
        try {
          decoder.decode(bytes);
        } catch {
          valid = false;
        }
        expect(firstInvalidUtf8(bytes) === 2).toBe(valid);
      }
    }
  });
});

describe("walkJson", () => {
  it.each([
    ['{"a":{"b":"xy', "a.b"],
    ['{"a":[1,2,"', "a[2]"],
    ['{"a":1,"b', ""],
    ["", ""],
  ])("names the value being read where %j ends: %j", (text, path) => {
    expect(walkJson(text)).toEqual({ path });
  });
});

function catchError(f: () => unknown): unknown {
  try {
    f();
  } catch (error) {
    return error;
  }
  throw new Error("expected a throw");
}
