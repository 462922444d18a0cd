/**
 * `npm run bench [-- --quick]`: issue 12's pairs (P1–P9) and how cost grows,
 * against the bench's own stack or an existing one (`BENCH_TARGET`; see
 * bench/README.md). Prints the report and writes it: BENCHMARKS.md and
 * bench/results/growth.svg, or with `--quick` into `BENCH_OUT` (default a
 * fresh temporary directory), since quick figures are no result.
 */
import { mkdtemp } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { runBench, type BenchOutput } from "./harness.js";
import { startOwnStack, targetStack } from "./stack.js";

const REPO_ROOT = path.resolve(import.meta.dirname, "..");

async function main(): Promise<void> {
  const quick = process.argv.includes("--quick");
  const outDir = quick ? (process.env.BENCH_OUT ?? (await mkdtemp(path.join(os.tmpdir(), "somagent-bench-quick-")))) : REPO_ROOT;
  const output: BenchOutput = quick
    ? { reportFile: path.join(outDir, "BENCHMARKS.md"), chartFile: path.join(outDir, "growth.svg") }
    : { reportFile: path.join(REPO_ROOT, "BENCHMARKS.md"), chartFile: path.join(REPO_ROOT, "bench", "results", "growth.svg") };
  const stack = targetStack() ?? (await startOwnStack());
  try {
    const report = await runBench(stack, { quick, command: `npm run bench${quick ? " -- --quick" : ""}`, output });
    process.stdout.write(`${report}\nwritten: ${output.reportFile}, ${output.chartFile}\n`);
  } finally {
    await stack.stop();
  }
}

await main();
