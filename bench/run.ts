/**
 * `npm run bench`: latency and throughput of the running service on this
 * machine, against the real local stack (started here on free ports, like
 * the tests, and stopped at the end). Prints a Markdown report with the
 * environment; bench/README.md keeps the last one written down.
 *
 *   BENCH_SESSIONS   sessions per scenario (default 40)
 *   BENCH_CONCURRENCY  parallel callers in the throughput scenario (default 8)
 */
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { SessionService } from "../gen/somagent/orchestrator/v1/session_pb.js";
import { installInfrastructure, startInfrastructure } from "../local/infrastructure.js";
import { KAFKA_VERSION } from "../local/kafka.js";
import { RAY_VERSION } from "../local/ray.js";
import { startServices } from "../local/services.js";
import { TEMPORAL_CLI_VERSION } from "../local/temporal.js";

const sessions = Number(process.env.BENCH_SESSIONS ?? 40);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 8);

/** Milliseconds at the given quantile of sorted samples (nearest rank). */
function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? Number.NaN;
}

interface Row {
  scenario: string;
  samples: number[];
  wallMs: number;
}

function row({ scenario, samples, wallMs }: Row): string {
  const sorted = [...samples].sort((a, b) => a - b);
  const f = (ms: number) => ms.toFixed(1);
  const rate = (samples.length / wallMs) * 1000;
  return `| ${scenario} | ${samples.length} | ${f(quantile(sorted, 0.5))} | ${f(quantile(sorted, 0.95))} | ${f(quantile(sorted, 0.99))} | ${f(sorted.at(-1) ?? Number.NaN)} | ${rate.toFixed(1)} |`;
}

/** Runs `task(i)` for i < count with `parallel` callers; returns each call's duration. */
async function measure(scenario: string, count: number, parallel: number, task: (i: number) => Promise<void>): Promise<Row> {
  const samples: number[] = [];
  let next = 0;
  const began = performance.now();
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < count) {
        const i = next++;
        const start = performance.now();
        await task(i);
        samples.push(performance.now() - start);
      }
    }),
  );
  return { scenario, samples, wallMs: performance.now() - began };
}

async function main(): Promise<void> {
  const stateDir = await mkdtemp(path.join(os.tmpdir(), "somagent-bench-"));
  const tools = await installInfrastructure();
  const infra = await startInfrastructure(tools, { stateDir, temporal: { ui: false } });
  try {
    const services = await startServices(
      {
        temporalAddress: infra.temporal.address,
        kafkaBootstrap: infra.kafka.bootstrap,
        rayDashboardUrl: infra.ray.dashboardUrl.href,
        rayServeUrl: infra.ray.serveUrl.href,
        rayAuthToken: infra.ray.authToken,
      },
      { stateDir, codecKeys: `bench:${randomBytes(32).toString("base64")}` },
    );
    try {
      const base = services.api.url.origin;
      const client = createClient(SessionService, createGrpcTransport({ baseUrl: base }));
      const run = randomUUID().slice(0, 8);
      const body = (id: string) =>
        JSON.stringify({ tenant: "tenant-demo", user: "user-demo", prompt: "kick off a demo", metadata: { session_id: id } });
      const restStart = async (id: string) => {
        const response = await fetch(`${base}/v1/sessions/start`, { method: "POST", headers: { "content-type": "application/json" }, body: body(id) });
        if (!response.ok) throw new Error(`start ${id}: ${response.status} ${await response.text()}`);
        await response.arrayBuffer();
      };
      // Warm-up: the first session deploys nothing new but loads every code path once.
      await client.start({ tenant: "tenant-demo", user: "user-demo", prompt: "warm up", metadata: { session_id: `warm-${run}` } });
      for await (const _ of client.watch({ workflowId: `session-warm-${run}` }));

      const rows: Row[] = [];
      rows.push(await measure("REST Start (POST /v1/sessions/start), 1 caller", sessions, 1, (i) => restStart(`rest1-${run}-${i}`)));
      rows.push(await measure(`REST Start, ${concurrency} callers`, sessions, concurrency, (i) => restStart(`restn-${run}-${i}`)));
      // Let the worker finish the sessions started above, so they do not load the next scenarios.
      for (const prefix of ["rest1", "restn"]) {
        for (let i = 0; i < sessions; i++) for await (const _ of client.watch({ workflowId: `session-${prefix}-${run}-${i}` }));
      }
      rows.push(
        await measure("gRPC Get of a completed session, 1 caller", sessions, 1, async () => {
          await client.get({ workflowId: `session-warm-${run}` });
        }),
      );
      const endToEnd = (label: string, parallel: number) =>
        measure(label, sessions, parallel, async (i) => {
          const started = await client.start({
            tenant: "tenant-demo",
            user: "user-demo",
            prompt: `kick off demo ${i}`,
            metadata: { session_id: `e2e-${parallel}-${run}-${i}` },
          });
          let last = "";
          for await (const event of client.watch({ workflowId: started.workflowId })) last = event.event.case ?? "";
          if (last !== "completed") throw new Error(`session ${started.workflowId} ended with ${last}`);
        });
      rows.push(await endToEnd("whole session (gRPC Start → Watch to completed), 1 caller", 1));
      rows.push(await endToEnd(`whole session, ${concurrency} callers`, concurrency));

      const cpu = os.cpus()[0]?.model ?? "unknown CPU";
      process.stdout.write(
        [
          `Run ${new Date().toISOString()} · ${os.cpus().length} × ${cpu} · ${Math.round(os.totalmem() / 2 ** 30)} GiB · Node ${process.version} · ` +
            `Temporal CLI ${TEMPORAL_CLI_VERSION} dev server (in memory) · Kafka ${KAFKA_VERSION} · Ray ${RAY_VERSION} · everything on this machine, loopback`,
          "",
          "| scenario | n | p50 ms | p95 ms | p99 ms | max ms | per s |",
          "|---|---|---|---|---|---|---|",
          ...rows.map(row),
          "",
        ].join("\n"),
      );
    } finally {
      await services.stop();
    }
  } finally {
    await infra.stop();
    await rm(stateDir, { recursive: true, force: true });
  }
}

await main();
