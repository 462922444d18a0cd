/**
 * The bench's load driver: a fixed number of calls in flight, each call timed,
 * and the alternation of two sides (A, B, A, B…) so that both see the same
 * background load of a shared machine.
 */

/** One batch: each call's duration and the batch's wall time, in milliseconds. */
export interface Batch {
  samples: number[];
  wallMs: number;
}

/** Runs `task(i)` for i < `count` with `inFlight` calls at a time. A failing call fails the batch. */
export async function drive(count: number, inFlight: number, task: (i: number) => Promise<unknown>): Promise<Batch> {
  const samples: number[] = [];
  let next = 0;
  const began = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(inFlight, count) }, async () => {
      while (next < count) {
        const i = next++;
        const start = performance.now();
        await task(i);
        samples.push(performance.now() - start);
      }
    }),
  );
  return { samples, wallMs: performance.now() - began };
}

/** p50/p99 in milliseconds (nearest rank) and calls per second. */
export interface Summary {
  n: number;
  p50: number;
  p99: number;
  perSecond: number;
}

/** Milliseconds at quantile `q` of `samples` (nearest rank). */
export function quantile(samples: readonly number[], q: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? Number.NaN;
}

/** One side's batches merged: quantiles over every call, rate over the batches' summed wall time. */
export function summarize(batches: readonly Batch[]): Summary {
  const samples = batches.flatMap((batch) => batch.samples);
  const wallMs = batches.reduce((sum, batch) => sum + batch.wallMs, 0);
  return { n: samples.length, p50: quantile(samples, 0.5), p99: quantile(samples, 0.99), perSecond: (samples.length / wallMs) * 1000 };
}

/**
 * Runs each side's batch once per round, the sides in the same order every
 * round (A, B, A, B…), so both see the same background load; returns each
 * side's batches. With `warmUp`, each side first runs one unmeasured batch (round -1).
 */
export async function alternate<K extends string, B>(
  plan: { rounds: number; warmUp: boolean },
  sides: Record<K, (round: number) => Promise<B>>,
): Promise<Record<K, B[]>> {
  const names = Object.keys(sides) as K[];
  const { rounds, warmUp } = plan;
  if (warmUp) for (const name of names) await sides[name](-1);
  const batches = Object.fromEntries(names.map((name) => [name, [] as B[]])) as Record<K, B[]>;
  for (let round = 0; round < rounds; round++) {
    for (const name of names) batches[name].push(await sides[name](round));
  }
  return batches;
}
