/**
 * The strict JSON reader of every JSON request body (REST, Connect, gRPC and
 * gRPC-Web with `+json`): UTF-8 decoded with a fatal decoder, and an object
 * that names a key twice refused, where `JSON.parse` would replace bad bytes
 * with U+FFFD and keep the last of the keys. Both failures name where they
 * are: the field path (`metadata.session_id`, `items[2]`) and, for bad
 * UTF-8, the byte offset.
 */
import type { JsonValue } from "@bufbuild/protobuf";

/** Why a body is not strict JSON: what is wrong, and at which field path ("" for the body itself). */
export class StrictJsonError extends Error {
  constructor(
    message: string,
    /** Field path of the offending key or string, as the client spelled it; "" when no field can be named. */
    readonly field: string,
    /** Byte offset of the first invalid UTF-8 byte, when that is the failure. */
    readonly byteOffset?: number,
  ) {
    super(message);
    this.name = "StrictJsonError";
  }
}

const fatalDecoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Parses `bytes` as JSON after a fatal UTF-8 decode, refusing duplicate keys.
 * Throws {@link StrictJsonError} for invalid UTF-8 or a duplicate key, and
 * `SyntaxError` (from `JSON.parse`) for any other malformed JSON.
 */
export function parseStrictJson(bytes: Uint8Array): JsonValue {
  let text: string;
  try {
    text = fatalDecoder.decode(bytes);
  } catch {
    const offset = firstInvalidUtf8(bytes);
    // The bytes before the bad one are valid: walk them to see which field was being read.
    const field = walkJson(fatalDecoder.decode(bytes.subarray(0, offset))).path;
    throw new StrictJsonError(`${field || "request body"}: invalid UTF-8 at byte ${offset}`, field, offset);
  }
  const value = JSON.parse(text) as JsonValue;
  const duplicate = walkJson(text).duplicate;
  if (duplicate !== undefined) throw new StrictJsonError(`${duplicate}: duplicate JSON key`, duplicate);
  return value;
}

/** The offset of the first byte that is not part of well-formed UTF-8 (RFC 3629), or `bytes.length` when all are. */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  const n = bytes.length;
  while (i < n) {
    const b = bytes[i] as number;
    if (b < 0x80) {
      i += 1;
      continue;
    }
    // Allowed range of the second byte for each lead byte; overlongs and surrogates excluded.
    let length: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) length = 2;
    else if (b >= 0xe0 && b <= 0xef) {
      length = 3;
      if (b === 0xe0) lo = 0xa0;
      if (b === 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      length = 4;
      if (b === 0xf0) lo = 0x90;
      if (b === 0xf4) hi = 0x8f;
    } else return i;
    if (i + length > n) return i;
    const second = bytes[i + 1] as number;
    if (second < lo || second > hi) return i;
    for (let k = 2; k < length; k++) {
      const c = bytes[i + k] as number;
      if (c < 0x80 || c > 0xbf) return i;
    }
    i += length;
  }
  return n;
}

interface Frame {
  kind: "object" | "array";
  /** Keys seen so far (objects). */
  keys: Set<string>;
  /** The key whose value is being read (objects), or undefined while a key is expected. */
  key: string | undefined;
  /** Index of the element being read (arrays). */
  index: number;
}

/**
 * Walks JSON text token by token (it may be cut short, e.g. just before a bad
 * byte) and returns the first duplicated key's path, if any, and the path of
 * the value being read where the text ends. Assumes the text up to its end is
 * well-formed JSON; what it is given past a syntax error is not meaningful.
 */
export function walkJson(text: string): { duplicate?: string; path: string } {
  const stack: Frame[] = [];
  const pathOf = (extra?: string) => {
    const parts: string[] = [];
    for (const frame of stack) {
      if (frame.kind === "array") parts.push(`[${frame.index}]`);
      else if (frame.key !== undefined) parts.push(parts.length === 0 ? frame.key : `.${frame.key}`);
    }
    if (extra !== undefined) parts.push(parts.length === 0 ? extra : `.${extra}`);
    return parts.join("");
  };
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    const top = stack[stack.length - 1];
    switch (c) {
      case "{":
        stack.push({ kind: "object", keys: new Set(), key: undefined, index: 0 });
        i += 1;
        break;
      case "[":
        stack.push({ kind: "array", keys: new Set(), key: undefined, index: 0 });
        i += 1;
        break;
      case "}":
      case "]":
        stack.pop();
        i += 1;
        break;
      case ",":
        if (top?.kind === "array") top.index += 1;
        else if (top) top.key = undefined;
        i += 1;
        break;
      case '"': {
        const end = stringEnd(text, i);
        if (end < 0) return { path: pathOf() };
        if (top?.kind === "object" && top.key === undefined) {
          const key = JSON.parse(text.slice(i, end + 1)) as string;
          if (top.keys.has(key)) return { duplicate: pathOf(key), path: pathOf(key) };
          top.keys.add(key);
          top.key = key;
        }
        i = end + 1;
        break;
      }
      default:
        // Whitespace, ':', numbers, true, false, null: nothing to track.
        i += 1;
    }
  }
  return { path: pathOf() };
}

/** Index of the quote closing the string that opens at `start`, or -1 when the text ends first. */
function stringEnd(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    const c = text[i];
    if (c === "\\") i += 1;
    else if (c === '"') return i;
  }
  return -1;
}
