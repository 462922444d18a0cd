/**
 * The Temporal SDK's logger (`Runtime.install({ logger })`) written through
 * ours: the SDK's own lines, its native core's (forwarded) and those of
 * `workflow.log` / activity `Context.log` become one JSON line each, their
 * attributes fields, the session named as everywhere else.
 */
import { ApplicationFailure, type LogLevel as SdkLogLevel, type LogMetadata, type Logger as SdkLogger } from "@temporalio/common";
import { sessionLogFields } from "../temporal/session-log-fields.js";
import { errorField, type Logger, type LogLevel } from "../shared/logger.js";

const LEVELS: Record<SdkLogLevel, LogLevel> = { TRACE: "debug", DEBUG: "debug", INFO: "info", WARN: "warn", ERROR: "error" };

/** The SDK's line when a workflow ends with an error (its own failure or a bug failing the task). */
const WORKFLOW_FAILED = "Workflow failed";

/** Activity attributes not written: the task token completes the activity for whoever holds it. */
const WITHHELD = new Set(["taskToken"]);

/** A Temporal SDK `Logger` writing to `logger`. */
export function createSdkLogger(logger: Logger): SdkLogger {
  const log = (level: SdkLogLevel, message: string, meta?: LogMetadata) => {
    // A session the workflow ended as failed on purpose is an outcome, not a fault: the activity's line already warned.
    const outcome = message === WORKFLOW_FAILED && decidedFailure(meta?.error) !== undefined;
    logger.log(outcome ? "info" : LEVELS[level], message, meta && fieldsOf(meta));
  };
  return {
    log,
    trace: (message, meta) => log("TRACE", message, meta),
    debug: (message, meta) => log("DEBUG", message, meta),
    info: (message, meta) => log("INFO", message, meta),
    warn: (message, meta) => log("WARN", message, meta),
    error: (message, meta) => log("ERROR", message, meta),
  };
}

/** The SDK's attributes as our fields: `workflowId` as `workflow_id` with its `session_id`, errors as {@link errorOf}. */
function fieldsOf(meta: LogMetadata): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(meta)) {
    if (WITHHELD.has(key)) continue;
    if (key === "workflowId" && typeof value === "string") {
      Object.assign(fields, sessionLogFields(value));
    } else if (key === "error") {
      fields.error = errorOf(value);
    } else {
      fields[key] = value;
    }
  }
  return fields;
}

/**
 * A failure the code decided on is written as its type and message only:
 * an activity's non-retryable `ApplicationFailure` (a refusal, a permanent
 * error it has named) or the `ApplicationFailure` a workflow ends with. Their
 * stack would only point at the code's own throw. Anything else keeps its stack.
 */
function errorOf(error: unknown): unknown {
  return decidedFailure(error) ?? errorField(error);
}

function decidedFailure(error: unknown): { type: string; message: string } | undefined {
  if (error instanceof ApplicationFailure) return error.nonRetryable ? { type: error.type ?? error.name, message: error.message } : undefined;
  // A workflow's error reaches the logger from the workflow sandbox as a plain Error; its stack still names its class.
  if (error instanceof Error && error.stack?.startsWith(`${ApplicationFailure.name}: `)) return { type: ApplicationFailure.name, message: error.message };
  return undefined;
}
