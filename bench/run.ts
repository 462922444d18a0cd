/**
 * `npm run bench [-- --quick]`: issue 12's pairs (P1–P9) and how cost grows,
 * against the bench's own stack or an existing one (`BENCH_TARGET`; see
 * bench/README.md). Prints the report and writes it: BENCHMARKS.md and
 * bench/results/growth.svg, or with `--quick` or `BENCH_ONLY` into `BENCH_OUT` (default a
 * fresh temporary directory), since quick figures are no result.
 */
import { mkdtemp } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { PAIR_IDS, runBench, type BenchOutput } from "./harness.js";
import { BenchConfigError, startOwnStack, targetStack } from "./stack.js";

const REPO_ROOT = path.resolve(import.meta.dirname, "..");

/** `BENCH_SCALE`: multiplies every batch and stream count (default 1), e.g. 0.25 for a shorter full run on a busy machine. */
function scaleFromEnvironment(): number {
  const value = process.env.BENCH_SCALE ?? "1";
  const scale = Number(value);
  if (!(scale > 0 && scale <= 10)) throw new BenchConfigError(`BENCH_SCALE: expected a number in (0, 10], got ${JSON.stringify(value)}`);
  return scale;
}

/** `BENCH_ONLY`: a comma-separated list of pair ids (e.g. `P4,P7`) to measure alone, without the growth series. */
function onlyFromEnvironment(): Set<string> | undefined {
  const value = process.env.BENCH_ONLY;
  if (value === undefined || value.trim() === "") return undefined;
  const ids = value.split(",").map((id) => id.trim());
  const unknown = ids.filter((id) => !(PAIR_IDS as readonly string[]).includes(id));
  if (unknown.length > 0) throw new BenchConfigError(`BENCH_ONLY: unknown pair ${unknown.join(", ")}; expected some of ${PAIR_IDS.join(", ")}`);
  return new Set(ids);
}

async function main(): Promise<void> {
  const quick = process.argv.includes("--quick");
  const scale = scaleFromEnvironment();
  const only = onlyFromEnvironment();
  // A partial run never overwrites the committed report.
  const outDir = quick || only ? (process.env.BENCH_OUT ?? (await mkdtemp(path.join(os.tmpdir(), "somagent-bench-quick-")))) : REPO_ROOT;
  const output: BenchOutput = quick || only
    ? { reportFile: path.join(outDir, "BENCHMARKS.md"), chartFile: path.join(outDir, "growth.svg") }
    : { reportFile: path.join(REPO_ROOT, "BENCHMARKS.md"), chartFile: path.join(REPO_ROOT, "bench", "results", "growth.svg") };
  const stack = targetStack() ?? (await startOwnStack());
  try {
    const settings = [scale === 1 ? "" : `BENCH_SCALE=${scale} `, only ? `BENCH_ONLY=${[...only].join(",")} ` : ""].join("");
    const command = `${settings}npm run bench${quick ? " -- --quick" : ""}`;
    const { report, failed } = await runBench(stack, { quick, scale, only, command, output });
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
