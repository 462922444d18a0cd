/** The Markdown report: the command, the machine, each pair's table with its bars, and how cost grows. */
import { execFile } from "node:child_process";
import os from "node:os";
import { promisify } from "node:util";
import type { Summary } from "./driver.js";
import type { BenchResults, PairResult } from "./results.js";
import type { BenchStack } from "./stack.js";

const execFileAsync = promisify(execFile);

/** The machine the run was on, for the report's header. */
export async function describeMachine(stack: BenchStack): Promise<string> {
  const cpuModel = os.cpus()[0]?.model ?? "unknown CPU";
  const nproc = (await execFileAsync("nproc").then((r) => r.stdout.trim()).catch(() => String(os.availableParallelism())));
  return [
    `- machine: \`nproc\` ${nproc}, ${cpuModel}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB memory, ${os.type()} ${os.release()}`,
    `- Node ${process.version}; Temporal CLI ${stack.versions.temporalCli}; Kafka ${stack.versions.kafka}; Ray ${stack.versions.ray} (the versions local/ pins)`,
    `- against ${stack.origin}; client, servers and load share this machine over loopback`,
  ].join("\n");
}

const ms = (value: number) => (Number.isFinite(value) ? value.toFixed(2) : "–");
const rate = (value: number) => (Number.isFinite(value) ? value.toFixed(1) : "–");

function summaryCells(summary: Summary): string {
  return `${summary.n} | ${ms(summary.p50)} | ${ms(summary.p99)} | ${rate(summary.perSecond)}`;
}

function pairSection(pair: PairResult): string[] {
  const lines = [`### ${pair.id}: ${pair.title}`, ""];
  if (pair.skipped) return [...lines, `**skipped**: ${pair.skipped}`, ""];
  if (pair.failed) return [...lines, `**failed**: ${pair.failed}`, ""];
  if (pair.rows.length > 0) {
    lines.push("| side | n | p50 ms | p99 ms | per s |", "|---|---|---|---|---|", ...pair.rows.map((row) => `| ${row.side} | ${summaryCells(row.summary)} |`), "");
  }
  lines.push("| check | value | bar | met |", "|---|---|---|---|", ...pair.verdicts.map((v) => `| ${v.what} | ${v.value} | ${v.bar} | ${v.met ? "yes" : "**no**"} |`), "");
  if (pair.note) lines.push(`_${pair.note}_`, "");
  return lines;
}

/** The whole report. `chart` is the chart's path relative to the report, when one was drawn. */
export function renderReport(options: { command: string; machine: string; startedAt: Date; plan: { rounds: number; warmUp: boolean }; results: BenchResults; chart: string | undefined }): string {
  const { results } = options;
  const summary = results.pairs.map((pair) => {
    const verdict = pair.failed ? "**failed**" : pair.skipped ? "skipped" : pair.verdicts.every((v) => v.met) ? "met" : "**not met**";
    return `| ${pair.id} | ${pair.title} | ${pair.skipped || pair.failed ? "–" : pair.verdicts.map((v) => `${v.what}: ${v.value} (${v.bar})`).join("; ")} | ${verdict} |`;
  });
  const growthRow = (label: string, series: Array<{ inFlight: number; summary: Summary }>) =>
    series.map((level) => `| ${label} | ${level.inFlight} | ${summaryCells(level.summary)} |`);
  return [
    "# Benchmarks",
    "",
    `Written by \`${options.command}\` on ${options.startedAt.toISOString()}; ${options.plan.rounds} alternating rounds (A, B, A, B…) per pair${options.plan.warmUp ? ", after one unmeasured warm-up batch per side" : ", no warm-up"}. How each pair is measured and why its floor is fair: [bench/README.md](bench/README.md).`,
    "",
    options.machine,
    "",
    "## Bars",
    "",
    "| # | what | measured (bar) | verdict |",
    "|---|---|---|---|",
    ...summary,
    "",
    "## Pairs",
    "",
    ...results.pairs.flatMap(pairSection),
    "## How cost grows",
    "",
    "| series | in flight | n | p50 ms | p99 ms | per s |",
    "|---|---|---|---|---|---|",
    ...growthRow("Start (gRPC, idle API)", results.growth.start),
    ...growthRow("whole session", results.growth.session),
    "",
    "| open Watch streams | still open | API RSS MiB | idle CPU % |",
    "|---|---|---|---|",
    ...results.growth.watches.map((w) => `| ${w.streams} | ${w.held} | ${(w.rssBytes / 2 ** 20).toFixed(1)} | ${w.idleCpuPercent.toFixed(2)} |`),
    "",
    ...(options.chart ? [`![How cost grows](${options.chart})`, ""] : []),
  ].join("\n");
}
