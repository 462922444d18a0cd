/**
 * Parsing of untyped JSON (request bodies and the companions' data files) into
 * typed values. Every failure is a {@link FieldError} naming the field, which
 * the JSON service answers as 400 and the file loaders prefix with the path.
 */
import { readFileSync } from "node:fs";
import { FieldError } from "../shared/http/errors.js";

/** Whether `value` is a plain JSON object (not null, not an array). */
function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A JSON object; throws {@link FieldError} otherwise. */
export function expectObject(value: unknown, field: string): Record<string, unknown> {
  if (!isRecord(value)) throw new FieldError(field, value === undefined ? "is required" : "must be a JSON object");
  return value;
}

/** Rejects keys other than `allowed`, so a misspelt field is not silently ignored. */
export function expectOnlyKeys(record: Record<string, unknown>, allowed: readonly string[], at: string): void {
  const unknown = Object.keys(record).find((key) => !allowed.includes(key));
  if (unknown !== undefined) throw new FieldError(fieldPath(at, unknown), `is not a known field (expected ${allowed.join(", ")})`);
}

/** Limits of {@link expectString}. */
export interface StringRules {
  /** Longest accepted value in UTF-16 code units (default 256). */
  maxLength?: number;
  /** Whether `""` is accepted (default false). */
  allowEmpty?: boolean;
  /** A pattern the value must match, described in the message by `patternHint`. */
  pattern?: RegExp;
  patternHint?: string;
}

/** A string within `rules`; throws {@link FieldError} otherwise. */
export function expectString(value: unknown, field: string, rules: StringRules = {}): string {
  const maxLength = rules.maxLength ?? 256;
  if (value === undefined) throw new FieldError(field, "is required");
  if (typeof value !== "string") throw new FieldError(field, "must be a string");
  if (value === "" && !rules.allowEmpty) throw new FieldError(field, "must not be empty");
  if (value.length > maxLength) throw new FieldError(field, `must be at most ${maxLength} characters`);
  if (rules.pattern && !rules.pattern.test(value)) throw new FieldError(field, `must be ${rules.patternHint ?? `a value matching ${rules.pattern}`}`);
  return value;
}

/** An array of strings each within `rules`, at most `maxItems` long (default 64). */
export function expectStringArray(value: unknown, field: string, rules: StringRules & { maxItems?: number } = {}): string[] {
  const maxItems = rules.maxItems ?? 64;
  if (value === undefined) throw new FieldError(field, "is required");
  if (!Array.isArray(value)) throw new FieldError(field, "must be an array of strings");
  if (value.length > maxItems) throw new FieldError(field, `must have at most ${maxItems} items`);
  return value.map((item, index) => expectString(item, `${field}[${index}]`, rules));
}

/** An array of at most `maxItems` items, each parsed by `parse` with its indexed path. */
export function expectArray<T>(value: unknown, field: string, maxItems: number, parse: (item: unknown, at: string) => T): T[] {
  if (value === undefined) throw new FieldError(field, "is required");
  if (!Array.isArray(value)) throw new FieldError(field, "must be an array");
  if (value.length > maxItems) throw new FieldError(field, `must have at most ${maxItems} items`);
  return value.map((item, index) => parse(item, `${field}[${index}]`));
}

/** A finite number; `min` is inclusive unless `exclusiveMin` is set. */
export function expectNumber(value: unknown, field: string, bounds: { min: number; exclusiveMin?: boolean }): number {
  if (value === undefined) throw new FieldError(field, "is required");
  if (typeof value !== "number" || !Number.isFinite(value)) throw new FieldError(field, "must be a finite number");
  if (bounds.exclusiveMin ? value <= bounds.min : value < bounds.min) {
    throw new FieldError(field, `must be ${bounds.exclusiveMin ? "greater than" : "at least"} ${bounds.min}`);
  }
  return value;
}

/** A boolean; throws {@link FieldError} otherwise. */
export function expectBoolean(value: unknown, field: string): boolean {
  if (value === undefined) throw new FieldError(field, "is required");
  if (typeof value !== "boolean") throw new FieldError(field, "must be true or false");
  return value;
}

/** `at.key`, or `key` at the top level. */
export function fieldPath(at: string, key: string): string {
  return at === "" ? key : `${at}.${key}`;
}

/**
 * Reads a companion's data file, or takes the shipped data when `path` is
 * unset, and parses it; throws an Error naming the file (and the field, for
 * a {@link FieldError}).
 */
export function loadDataFile<T>(path: string | undefined, shipped: { name: string; value: unknown }, parse: (value: unknown) => T): T {
  const label = path ?? shipped.name;
  let value = shipped.value;
  if (path !== undefined) {
    try {
      value = JSON.parse(readFileSync(path, "utf8"));
    } catch (error) {
      throw new Error(`${label}: ${(error as Error).message}`, { cause: error });
    }
  }
  try {
    return parse(value);
  } catch (error) {
    if (error instanceof FieldError) throw new Error(`${label}: ${error.message}`, { cause: error });
    throw error;
  }
}
