/**
 * `npm run bench -- --quick` in CI, so the harness cannot rot: the quick sizes
 * on the test run's real infrastructure, with the bench's own services on top.
 * It checks that every pair produced its rows and verdicts and that the
 * report and chart were written; never a figure (no timed assertion).
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runBench } from "../../bench/harness.js";
import { startBenchServices, type BenchStack } from "../../bench/stack.js";
import { infra } from "../support/infra.js";

const PAIRS = ["P1", "P2", "P3", "P4", "P5", "P5b", "P6", "P7", "P8", "P9"];

describe("npm run bench -- --quick", () => {
  let dir: string;
  let stack: BenchStack;
  let report: string;

  beforeAll(async () => {
    const run = infra();
    dir = await mkdtemp(path.join(tmpdir(), "somagent-bench-test-"));
    stack = await startBenchServices(
      {
        temporalAddress: run.temporal.address,
        kafkaBootstrap: run.kafka.bootstrap,
        rayDashboardUrl: run.ray.dashboardUrl,
        rayServeUrl: run.ray.serveUrl,
        rayAuthToken: run.ray.authToken,
      },
      dir,
      "the test run's infrastructure",
    );
    ({ report } = await runBench(stack, {
      quick: true,
      command: "vitest run test/bench/quick.test.ts",
      output: { reportFile: path.join(dir, "BENCHMARKS.md"), chartFile: path.join(dir, "results", "growth.svg") },
    }));
  }, 600_000);

  afterAll(async () => {
    await stack?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("measures every pair of issue 12 and checks each bar", () => {
    for (const id of PAIRS) {
      const section = report.split(`### ${id}: `)[1]?.split("\n### ")[0] ?? "";
      expect(section, id).not.toBe("");
      expect(section, id).not.toContain("**skipped**");
      expect(section, id).not.toContain("**failed**");
      expect(section, id).toMatch(/\| (yes|\*\*no\*\*) \|/);
    }
  });

  it("writes the report with the machine, the growth tables and the chart", async () => {
    const written = await readFile(path.join(dir, "BENCHMARKS.md"), "utf8");
    expect(written).toBe(report);
    expect(written).toContain("`nproc`");
    expect(written).toContain("## How cost grows");
    expect(written).toContain("![How cost grows](results/growth.svg)");
    expect(await readFile(path.join(dir, "results", "growth.svg"), "utf8")).toMatch(/^<svg[\s\S]*<\/svg>$/);
  });
});
