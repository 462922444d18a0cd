/**
 * Progress lines a person can follow while the local stack installs and
 * starts: each step says what it does and, when it ends, how long it took.
 */

/** `4m12s`, `850ms`, `3.2s`. */
export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)}s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes}m${String(Math.round((ms % 60_000) / 1_000)).padStart(2, "0")}s`;
}

/** Where progress goes; stderr by default so stdout stays for summaries. */
export type ProgressSink = (line: string) => void;

let sink: ProgressSink = (line) => process.stderr.write(`${line}\n`);

/** Redirects progress lines (tests capture them; `SOMAGENT_QUIET=1` silences them). */
export function setProgressSink(next: ProgressSink): void {
  sink = next;
}

/** Prints one line of progress. */
export function progress(line: string): void {
  if (process.env.SOMAGENT_QUIET === "1") return;
  sink(line);
}

/** How often a step still running says so: a first build of the Temporal CLI takes minutes and prints nothing itself. */
const STILL_RUNNING_EVERY_MS = 15_000;

/**
 * Runs `work`, printing `label...` before, `label... 45s so far` every 15 s
 * while it runs, and `label... done in 4m12s` (or the failure) after, and
 * returns its result.
 */
export async function step<T>(label: string, work: () => Promise<T>): Promise<T> {
  const started = Date.now();
  progress(`${label}...`);
  const stillRunning = setInterval(() => progress(`${label}... ${formatDuration(Date.now() - started)} so far`), STILL_RUNNING_EVERY_MS);
  stillRunning.unref();
  try {
    const result = await work();
    progress(`${label}... done in ${formatDuration(Date.now() - started)}`);
    return result;
  } catch (error) {
    progress(`${label}... FAILED after ${formatDuration(Date.now() - started)}`);
    throw error;
  } finally {
    clearInterval(stillRunning);
  }
}
