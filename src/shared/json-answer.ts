/**
 * The one way a client reads another service's JSON answer: field by field,
 * each typed read failing with a {@link PermanentCallError} that names the
 * service, what it answered and the first field that is missing or of the
 * wrong type (`policy-engine: answered a decision without a valid violations[0].name`).
 *
 * Why not proto messages read with `fromJson`: the companions, the Ray
 * dashboard and the Serve app answer plain snake_case JSON they define
 * themselves, with no .proto to generate from, and proto3 JSON would read a
 * missing scalar as its zero value where these answers must be refused.
 */
import { PermanentCallError } from "./call-errors.js";

/** Whether a parsed JSON value is an object (not null, not an array). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Typed reads of one JSON object of an answer; every read throws {@link PermanentCallError} naming its field. */
export interface AnswerReader {
  /** The object itself, for fields read as-is (e.g. JWT claims, a Serve application's config). */
  readonly record: Readonly<Record<string, unknown>>;
  /** A string; `nonEmpty` refuses `""`. */
  string(field: string, options?: { nonEmpty?: boolean }): string;
  /** A finite number. */
  number(field: string): number;
  /** A safe integer within `min`..`max` (both inclusive). */
  integer(field: string, range: { min: number; max: number }): number;
  boolean(field: string): boolean;
  /** An array of strings. */
  strings(field: string): string[];
  /** An array of objects, each with its own reader (`field[i].x` in messages). */
  objects(field: string): AnswerReader[];
  /** A nested object with its own reader (`field.x` in messages). */
  object(field: string): AnswerReader;
  /** Refuses the answer for `field` when a check beyond its type fails (a date that does not parse, a wrong constant). */
  fail(field: string): never;
}

/**
 * A reader of `body`, the parsed answer of `target` (its label in errors and
 * metrics); `what` names the answer in messages ("a decision", "a token").
 * Throws {@link PermanentCallError} right away when `body` is not an object.
 */
export function readAnswer(target: string, what: string, body: unknown): AnswerReader {
  const fail = (path: string): never => {
    throw new PermanentCallError(target, `answered ${what} without a valid ${path}`);
  };
  if (!isRecord(body)) return fail("JSON object");
  return reader(body, "", fail);
}

function reader(record: Record<string, unknown>, prefix: string, fail: (path: string) => never): AnswerReader {
  const at = (field: string) => `${prefix}${field}`;
  const self: AnswerReader = {
    record,
    string(field, options = {}) {
      const value = record[field];
      return typeof value === "string" && !(options.nonEmpty && value === "") ? value : fail(at(field));
    },
    number(field) {
      const value = record[field];
      return typeof value === "number" && Number.isFinite(value) ? value : fail(at(field));
    },
    integer(field, { min, max }) {
      const value = record[field];
      return typeof value === "number" && Number.isSafeInteger(value) && value >= min && value <= max ? value : fail(at(field));
    },
    boolean(field) {
      const value = record[field];
      return typeof value === "boolean" ? value : fail(at(field));
    },
    strings(field) {
      const value = record[field];
      return Array.isArray(value) && value.every((item): item is string => typeof item === "string") ? value : fail(at(field));
    },
    objects(field) {
      const value = record[field];
      if (!Array.isArray(value)) return fail(at(field));
      return value.map((item: unknown, index) => {
        const path = `${at(field)}[${index}]`;
        return isRecord(item) ? reader(item, `${path}.`, fail) : fail(path);
      });
    },
    object(field) {
      const value = record[field];
      return isRecord(value) ? reader(value, `${at(field)}.`, fail) : fail(at(field));
    },
    fail(field) {
      return fail(at(field));
    },
  };
  return self;
}
