/** What a bench run produces: the pairs' rows and verdicts, and how cost grows. */
import type { Summary } from "./driver.js";

/** One side of a pair (or one level of a growth series). */
export interface SideRow {
  side: string;
  summary: Summary;
}

/** A bar checked: `value` against `bar`, met or not. */
export interface Verdict {
  what: string;
  value: string;
  bar: string;
  met: boolean;
}

/** One pair of the table. `skipped` says why a pair could not run (never a made-up figure). */
export interface PairResult {
  id: string;
  title: string;
  rows: SideRow[];
  verdicts: Verdict[];
  /** How the figures were taken, when the table alone does not say. */
  note?: string;
  skipped?: string;
  /** The error that stopped the pair; the run goes on with the next one and exits non-zero. */
  failed?: string;
}

/** API memory and idle CPU with a number of open Watch streams. */
export interface WatchLevel {
  streams: number;
  /** Streams still open at the end of the reading (a stream the API or Temporal ended is not counted). */
  held: number;
  rssBytes: number;
  idleCpuPercent: number;
}

/** How cost grows with load. */
export interface Growth {
  start: Array<{ inFlight: number; summary: Summary }>;
  session: Array<{ inFlight: number; summary: Summary }>;
  watches: WatchLevel[];
}

export interface BenchResults {
  pairs: PairResult[];
  growth: Growth;
}

/** A ratio check: `value` ≤ or ≥ `bar`. */
export function ratioVerdict(what: string, ratio: number, comparison: "≤" | "≥", bar: number): Verdict {
  return {
    what,
    value: `${ratio.toFixed(2)}×`,
    bar: `${comparison} ${bar}`,
    met: comparison === "≤" ? ratio <= bar : ratio >= bar,
  };
}
