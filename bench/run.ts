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
import { BenchConfigError, startOwnStack, targetStack } from "./stack.js";

const REPO_ROOT = path.resolve(import.meta.dirname, "..");

/** `BENCH_SCALE`: multiplies every batch and stream count (default 1), e.g. 0.25 for a shorter full run on a busy machine. */
function scaleFromEnvironment(): number {
  const value = process.env.BENCH_SCALE ?? "1";
  const scale = Number(value);
  if (!(scale > 0 && scale <= 10)) throw new BenchConfigError(`BENCH_SCALE: expected a number in (0, 10], got ${JSON.stringify(value)}`);
  return scale;
}

async function main(): Promise<void> {
  const quick = process.argv.includes("--quick");
  const scale = scaleFromEnvironment();
  const outDir = quick ? (process.env.BENCH_OUT ?? (await mkdtemp(path.join(os.tmpdir(), "somagent-bench-quick-")))) : REPO_ROOT;
  const output: BenchOutput = quick
    ? { reportFile: path.join(outDir, "BENCHMARKS.md"), chartFile: path.join(outDir, "growth.svg") }
    : { reportFile: path.join(REPO_ROOT, "BENCHMARKS.md"), chartFile: path.join(REPO_ROOT, "bench", "results", "growth.svg") };
  const stack = targetStack() ?? (await startOwnStack());
  try {
    const command = `${scale === 1 ? "" : `BENCH_SCALE=${scale} `}npm run bench${quick ? " -- --quick" : ""}`;
    const { report, failed } = await runBench(stack, { quick, scale, command, output });
    process.stdout.write(`${report}\nwritten: ${output.reportFile}, ${output.chartFile}\n`);
    if (failed.length > 0) {
      process.stderr.write(`bench: failed pairs: ${failed.join(", ")}\n`);
      process.exitCode = 1;
    }
  } finally {
    await stack.stop();
  }
}

await main();
