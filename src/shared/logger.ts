/**
 * Structured logging, the one format of every process: one JSON object per
 * line with `time`, `level`, `message`, `service`, the caller's fields and,
 * when a span is active, its `trace_id`. Errors go to stderr, the rest to stdout.
 */
import { isSpanContextValid, trace } from "@opentelemetry/api";

/** Levels, least severe first; `LOG_LEVEL` names the least severe one written. */
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
/** One of {@link LOG_LEVELS}. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Structured logger; `fields` become top-level keys of the line. */
export interface Logger {
  /** Detail for diagnosing (SDK internals, each activity's completion). */
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  /** Something an operator should act on that does not stop the process (e.g. an unauthenticated API). */
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  /** Writes at `level`: for adapters (the Temporal SDK's, kafkajs') that pick it at run time. */
  log(level: LogLevel, message: string, fields?: Record<string, unknown>): void;
}

/**
 * Field names whose values are credentials wherever they appear: their value
 * is never written, whoever passes it (a safety net; callers pass none).
 */
const SECRET_FIELDS = new Set(["token", "secret", "password", "authorization", "apikey", "api_key", "client_secret", "mfa_code"]);

/**
 * A logger whose lines carry `service` and leave out levels below `level`;
 * `sink` replaces stdout/stderr (tests read the lines from it).
 */
export function createLogger(service: string, sink?: (line: string) => void, level: LogLevel = "info"): Logger {
  const threshold = LOG_LEVELS.indexOf(level);
  const log = (lineLevel: LogLevel, message: string, fields?: Record<string, unknown>) => {
    if (LOG_LEVELS.indexOf(lineLevel) < threshold) return;
    const line = JSON.stringify({ time: new Date().toISOString(), level: lineLevel, service, message, ...activeTrace(), ...fields }, loggable);
    if (sink) sink(line);
    else (lineLevel === "error" ? process.stderr : process.stdout).write(`${line}\n`);
  };
  return {
    debug: (message, fields) => log("debug", message, fields),
    info: (message, fields) => log("info", message, fields),
    warn: (message, fields) => log("warn", message, fields),
    error: (message, fields) => log("error", message, fields),
    log,
  };
}

/**
 * The logger of a process's entry point, at the level `readLevel` gives
 * (`loadLogLevel` of the configuration), which also writes the process's
 * Node warnings; when `readLevel` throws, the error is logged at the default
 * level and the process exits with status 1.
 */
export function createProcessLogger(service: string, readLevel: () => LogLevel): Logger {
  let logger: Logger;
  try {
    logger = createLogger(service, undefined, readLevel());
  } catch (error) {
    createLogger(service).error("invalid configuration", { error: error instanceof Error ? error.message : String(error) });
    process.exit(1);
  }
  // Node's own warnings (a deprecation, an experimental feature) in the same format, instead of its "(node:pid)" text.
  process.removeAllListeners("warning");
  process.on("warning", (warning) => logger.warn(warning.message, { warning: warning.name, ...("code" in warning ? { code: warning.code } : {}) }));
  return logger;
}

/** An error as a log field: its stack (one string, so still one line) holds its name and message. */
export function errorField(error: unknown): Record<string, unknown> | string {
  if (!(error instanceof Error)) return String(error);
  return { type: error.name, message: error.message, ...(error.stack ? { stack: error.stack } : {}) };
}

function activeTrace(): { trace_id?: string } {
  const context = trace.getActiveSpan()?.spanContext();
  return context && isSpanContextValid(context) ? { trace_id: context.traceId } : {};
}

/** `JSON.stringify` replacer: withholds secret fields, writes errors with their stack and bigints as strings. */
function loggable(this: unknown, key: string, value: unknown): unknown {
  if (SECRET_FIELDS.has(key.toLowerCase()) && value !== undefined && value !== "") return "<redacted>";
  if (value instanceof Error) return errorField(value);
  if (typeof value === "bigint") return value.toString();
  return value;
}
