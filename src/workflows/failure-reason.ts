/**
 * What a failed session's reason may show its caller. The reason reaches
 * callers through Get and Watch (and the audit event), so it names the step and
 * what went wrong, never where the service runs: URLs, IP addresses and
 * `host:port` pairs in a client's or a server's message are replaced.
 * Deterministic string work, safe in workflow code.
 */
import { ActivityFailure, ApplicationFailure, TimeoutFailure } from "@temporalio/workflow";

const HIDDEN = "<internal address>";

const ADDRESS_PATTERNS = [
  // Any URL: scheme, then everything up to whitespace or a quote.
  /\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>]+/gi,
  // IPv6 in brackets, with an optional port.
  /\[[0-9a-f:.]+\](?::\d+)?/gi,
  // IPv4, with an optional port.
  /\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b/g,
  // A host name with a port.
  /\b[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*:\d{1,5}\b/gi,
];

/** `text` with every internal address replaced by `<internal address>`. */
export function withoutAddresses(text: string): string {
  return ADDRESS_PATTERNS.reduce((shown, pattern) => shown.replace(pattern, HIDDEN), text);
}

/**
 * One step's failure as a sentence naming `service`: refused (the service's
 * permanent answer) or unreachable (its retry budget spent); no internal
 * addresses. A timeout is never a refusal, whatever retry state Temporal
 * reports with it: a budget that runs out during an attempt arrives as
 * NON_RETRYABLE_FAILURE with a bare ScheduleToClose timeout.
 */
export function stepFailureReason(service: string, error: unknown): string {
  // The activity's own error is the first ApplicationFailure; a timeout wraps the last one.
  let cause: unknown = error;
  let timedOut = false;
  while (!(cause instanceof ApplicationFailure) && cause instanceof Error) {
    timedOut ||= cause instanceof TimeoutFailure;
    if (!(cause.cause instanceof Error)) break;
    cause = cause.cause;
  }
  const detail = withoutAddresses(cause instanceof Error ? cause.message : String(cause));
  const refused = !timedOut && error instanceof ActivityFailure && error.retryState === "NON_RETRYABLE_FAILURE";
  return `${service} ${refused ? "refused" : "unreachable after its retry budget"}: ${detail}`;
}
