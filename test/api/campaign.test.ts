/**
 * The generated bad-input campaign against a real API (and its real Temporal
 * dev server): CAMPAIGN_SIZE requests (default 1,000; `npm run test:campaign`
 * runs 5,000) of every protocol, sent 16 at a time, then: no answer of 5xx
 * (Temporal is up, so not even 503), every request answered, the server still
 * serving /health, and the heap back near its baseline.
 *
 * Memory: the API runs in this process, so the process's heap is the API's.
 * Both measurements are taken after a full garbage collection (V8's `gc`,
 * exposed at run time with --expose-gc); the heap after the campaign must be
 * within 32 MiB of the heap before it. RSS is printed, not asserted: V8 and
 * the allocator keep pages they freed.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { useApiFixture } from "./api-fixture.js";
import { badRequest, createCampaignClient, formatTable, tally, type BadRequest, type Outcome } from "./bad-input-campaign.js";

const SIZE = Number(process.env.CAMPAIGN_SIZE ?? 1_000);
const SEED = Number(process.env.CAMPAIGN_SEED ?? Date.now() % 2 ** 31);
const CONCURRENCY = 16;
const BATCH = 100;
const HEAP_TOLERANCE = 32 * 1024 * 1024;

const fixture = useApiFixture();

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
const settledMemory = async () => {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return process.memoryUsage();
};
const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

describe("the bad-input campaign", () => {
  it(`answers ${SIZE} generated malformed requests on every protocol with no 5xx and no crash, and gives its memory back`, async () => {
    const { baseUrl } = fixture();
    const client = createCampaignClient(baseUrl);
    // Warm up (first calls compile code, open connections), then measure.
    await client.send({ protocol: "rest", kind: "warm-up", http2: false, method: "GET", path: "/v1/sessions/session-warm-up", headers: {}, body: Buffer.alloc(0) });
    const before = await settledMemory();
    const startedAt = performance.now();
    const results: { request: BadRequest; outcome: Outcome }[] = [];
    for (let batch = 0; batch * BATCH < SIZE; batch++) {
      const requests = fc.sample(badRequest, { numRuns: Math.min(BATCH, SIZE - batch * BATCH), seed: SEED + batch });
      let next = 0;
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (next < requests.length) {
            const request = requests[next++] as BadRequest;
            results.push({ request: { ...request, body: request.body.subarray(0, 64) }, outcome: await client.send(request) });
          }
        }),
      );
    }
    const seconds = (performance.now() - startedAt) / 1000;
    const health = await fetch(`${baseUrl}/health`);
    const crashes = health.status === 200 ? 0 : 1;
    client.close();
    const after = await settledMemory();
    const result = tally(results);
    const table = formatTable(result, {
      crashes,
      heap: `${mib(before.heapUsed)} → ${mib(after.heapUsed)}`,
      rss: `${mib(before.rss)} → ${mib(after.rss)}`,
      seed: SEED,
      seconds,
    });
    console.log(`\nbad-input campaign, ${SIZE} requests (CAMPAIGN_SEED=${SEED} repeats it):\n${table}\n`);
    const show = (list: { request: BadRequest; outcome: Outcome }[]) =>
      list.slice(0, 10).map(({ request, outcome }) => `${request.protocol} ${request.method} ${request.path.slice(0, 80)} [${request.kind}] ${JSON.stringify(request.headers)} → ${outcome.status || outcome.failure}`);
    expect({ serverErrors: show(result.serverErrors), noAnswer: show(result.noAnswer) }).toEqual({ serverErrors: [], noAnswer: [] });
    expect(crashes).toBe(0);
    expect(results).toHaveLength(SIZE);
    expect(after.heapUsed - before.heapUsed).toBeLessThan(HEAP_TOLERANCE);
  }, 600_000);
});
