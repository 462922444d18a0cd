/** The harness: runs the pairs and the growth series on a stack, writes the report and the chart. */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { growthChart } from "./chart.js";
import {
  FULL_SIZES,
  QUICK_SIZES,
  growthSeries,
  p1StartThroughput,
  p2p3StartLatency,
  p3RestVsConnect,
  p4CheapRpc,
  p5WholeSession,
  p5bSessionThroughput,
  p6WatchDelay,
  p7OpenWatches,
  p8AuditPublishing,
  p9Companions,
  preparePairs,
  scaleSizes,
  type Sizes,
} from "./pairs.js";
import { describeMachine, renderReport } from "./report.js";
import type { BenchResults, PairResult } from "./results.js";
import type { BenchStack } from "./stack.js";

/** Where a run writes: the report and the chart beside it (linked relatively). */
export interface BenchOutput {
  reportFile: string;
  chartFile: string;
}

/** Every pair's id, in the order the harness runs them. */
export const PAIR_IDS = ["P1", "P2", "P3", "P4", "P5", "P5b", "P6", "P7", "P8", "P9"] as const;

/**
 * Runs every pair and the growth series on `stack`; each pair's progress goes to stderr.
 * With `only`, just those pairs (P3 brings P2, whose Start batches it reuses) and no growth series.
 */
export async function runPairs(stack: BenchStack, sizes: Sizes, only?: ReadonlySet<string>): Promise<BenchResults> {
  const context = await preparePairs(stack, sizes);
  const pairs: PairResult[] = [];
  const step = async <T>(name: string, run: () => Promise<T>): Promise<T> => {
    const began = performance.now();
    try {
      return await run();
    } finally {
      process.stderr.write(`bench: ${name} took ${((performance.now() - began) / 1000).toFixed(1)} s\n`);
    }
  };
  // A pair that throws is reported as failed with its error; the others still run.
  const selected = (id: string) => !only || only.has(id) || (id === "P2" && only.has("P3"));
  const measure = async (id: string, run: () => Promise<PairResult>) => {
    if (!selected(id)) return;
    try {
      pairs.push(await step(id, run));
    } catch (error) {
      pairs.push({ id, title: "(failed)", rows: [], verdicts: [], failed: (error as Error).message });
    }
  };
  try {
    await measure("P1", () => p1StartThroughput(context));
    let startRows: Awaited<ReturnType<typeof p2p3StartLatency>>["startRows"];
    await measure("P2", async () => {
      const measured = await p2p3StartLatency(context);
      startRows = measured.startRows;
      return measured.p2;
    });
    await measure("P3", () => p3RestVsConnect(context, startRows));
    await measure("P4", () => p4CheapRpc(context));
    await measure("P5", () => p5WholeSession(context));
    await measure("P5b", () => p5bSessionThroughput(context));
    await measure("P6", async () => p6WatchDelay(context));
    await measure("P7", () => p7OpenWatches(context));
    await measure("P8", () => p8AuditPublishing(context));
    await measure("P9", () => p9Companions(context));
    const growth = only ? { start: [], session: [] } : await step("how cost grows", () => growthSeries(context));
    return { pairs, growth: { ...growth, watches: context.watchLevels } };
  } finally {
    await context.close();
  }
}

/** Runs the bench on `stack` and writes the report and the chart to `output`; returns the report and the pairs that failed. */
export async function runBench(
  stack: BenchStack,
  options: { quick: boolean; scale?: number; only?: ReadonlySet<string>; command: string; output: BenchOutput },
): Promise<{ report: string; failed: string[] }> {
  const startedAt = new Date();
  const sizes = scaleSizes(options.quick ? QUICK_SIZES : FULL_SIZES, options.scale ?? 1);
  const results = await runPairs(stack, sizes, options.only);
  await mkdir(path.dirname(options.output.chartFile), { recursive: true });
  await writeFile(options.output.chartFile, await growthChart(results.growth));
  const report = renderReport({
    command: options.command,
    machine: await describeMachine(stack),
    startedAt,
    plan: sizes,
    results,
    chart: path.relative(path.dirname(options.output.reportFile), options.output.chartFile),
  });
  await writeFile(options.output.reportFile, report);
  return { report, failed: results.pairs.filter((pair) => pair.failed).map((pair) => pair.id) };
}
