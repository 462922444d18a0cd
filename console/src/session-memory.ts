/**
 * What this browser tab remembers (sessionStorage: per tab, gone when the tab
 * closes): the bearer token, and each watched session's timeline so far, whose
 * last sequence is where Watch resumes after a reload.
 */
import type { TimelineEntry } from "./timeline.js";

const TOKEN_KEY = "somagent.console.token";
const timelineKey = (workflowId: string) => `somagent.console.timeline.${workflowId}`;

/** The token the user gave, or an empty string. */
export function storedToken(): string {
  return sessionStorage.getItem(TOKEN_KEY) ?? "";
}

/** Keeps `token` for this tab; an empty one is forgotten. */
export function storeToken(token: string): void {
  if (token === "") sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, token);
}

/** The timeline seen so far of a session, oldest first; empty when none was kept or it is unreadable. */
export function storedTimeline(workflowId: string): TimelineEntry[] {
  try {
    const parsed: unknown = JSON.parse(sessionStorage.getItem(timelineKey(workflowId)) ?? "[]");
    return Array.isArray(parsed) ? (parsed as TimelineEntry[]) : [];
  } catch {
    return [];
  }
}

/** Appends `entry` to the session's kept timeline. */
export function rememberEntry(workflowId: string, entry: TimelineEntry): void {
  sessionStorage.setItem(timelineKey(workflowId), JSON.stringify([...storedTimeline(workflowId), entry]));
}

/** The sequence Watch resumes after: the last kept event's, or 0 to replay from the start. */
export function lastSequence(timeline: readonly TimelineEntry[]): bigint {
  const last = timeline.at(-1);
  return last ? BigInt(last.sequence) : 0n;
}
