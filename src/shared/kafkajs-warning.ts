/**
 * kafkajs 2.2.4, its last release, schedules its request queue's throttle
 * check with `setTimeout(check, throttledUntil - Date.now())` while
 * `throttledUntil` is still its initial -1: a delay of minus the epoch in
 * milliseconds, on every connection of every client (producer, consumer,
 * admin). Node ≥ 23 reports that as a `TimeoutNegativeWarning` and runs the
 * timer after 1 ms, which is what kafkajs meant. Nothing a caller passes
 * avoids it (kafkajs#1751; the fixes, kafkajs#1755/#1756, are unreleased), so
 * this drops exactly that warning, raised from kafkajs's request queue, and
 * lets every other warning through.
 */

let installed = false;

/** Installs the filter once per process; later calls do nothing. */
export function silenceKafkajsNegativeTimeoutWarning(): void {
  if (installed) return;
  installed = true;
  const emitWarning = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((...args: unknown[]) => {
    const [, typeOrOptions] = args;
    const type = typeof typeOrOptions === "string" ? typeOrOptions : (typeOrOptions as { type?: string } | undefined)?.type;
    if (type === "TimeoutNegativeWarning" && /kafkajs[\\/]src[\\/]network[\\/]requestQueue/.test(new Error().stack ?? "")) return;
    emitWarning(...args);
  }) as typeof process.emitWarning;
}
