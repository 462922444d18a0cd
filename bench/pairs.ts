/**
 * The pairs of issue 12 (P1–P9): each measures one layer of ours against the
 * bare thing underneath it, A and B alternating in the same run.
 */
import { randomBytes } from "node:crypto";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import autocannon from "autocannon";
import { SessionService, type WatchResponse } from "../gen/somagent/orchestrator/v1/session_pb.js";
import { auditRecord, createAuditProducer } from "../src/clients/audit-producer.js";
import { loadKafkaConfig } from "../src/config.js";
import { createLogger } from "../src/shared/logger.js";
import { createMetricsRegistry } from "../src/shared/metrics.js";
import { alternate, drive, quantile, summarize, type Batch, type Summary } from "./driver.js";
import { createProducerPerEvent, createRawStarter, serveRecordedAnswers, startBareSessions, type BareSessions } from "./floors.js";
import {
  createH2Client,
  expectSuccess,
  getCall,
  startCall,
  watchCall,
  type Answer,
  type Call,
  type H2Client,
  type Protocol,
} from "./protocol-calls.js";
import { ratioVerdict, type PairResult, type SideRow, type WatchLevel } from "./results.js";
import { STREAMS_PER_CONNECTION, type BenchStack } from "./stack.js";

/** How much each pair measures; `--quick` shrinks everything. */
export interface Sizes {
  rounds: number;
  /** One unmeasured batch per side before the rounds. */
  warmUp: boolean;
  /** P1: Starts per side per round, at {@link START_IN_FLIGHT}. */
  startBatch: number;
  /** P2–P4: calls per side per round, one in flight. */
  latencyBatch: number;
  /** P5: whole sessions per side per round, one caller. */
  sessionBatch: number;
  /** P5b: sessions per side per round = callers × this. */
  sessionsPerCaller: number;
  /** P8: events per round of the shared producer; the producer-per-event side gets a tenth; each rounded to whole multiples of the 32 in flight. */
  auditBatch: number;
  /**
   * P9: seconds of load per side per round. autocannon runs by time, not by a
   * request count: a run of N requests lasts at least its one-second sampling
   * tick, so 2,000 requests read as ~2,000/s whatever the server could do.
   */
  companionSeconds: number;
  /** P7 and the memory series: open Watch streams, ascending, from 0. */
  watchLevels: number[];
  /** Idle CPU is read over this window. */
  idleCpuWindowMs: number;
  /** The growth series: in-flight levels, and calls per level = max(growthMinCalls, in flight × growthCallsPerInFlight). */
  growthInFlight: number[];
  growthMinCalls: number;
  growthCallsPerInFlight: number;
}

export const FULL_SIZES: Sizes = {
  rounds: 5,
  warmUp: true,
  startBatch: 256,
  latencyBatch: 50,
  sessionBatch: 10,
  sessionsPerCaller: 3,
  auditBatch: 400,
  companionSeconds: 3,
  watchLevels: [0, 1_000, 10_000],
  idleCpuWindowMs: 10_000,
  growthInFlight: [1, 8, 32, 128],
  growthMinCalls: 20,
  growthCallsPerInFlight: 4,
};

export const QUICK_SIZES: Sizes = {
  rounds: 2,
  warmUp: false,
  startBatch: 16,
  latencyBatch: 4,
  sessionBatch: 2,
  sessionsPerCaller: 1,
  auditBatch: 20,
  companionSeconds: 1,
  watchLevels: [0, 20, 100],
  idleCpuWindowMs: 1_000,
  growthInFlight: [1, 8],
  growthMinCalls: 4,
  growthCallsPerInFlight: 1,
};

/**
 * `sizes` with every count multiplied by `factor` (at least one call, two
 * sessions per batch); rounds and in-flight levels stay, so every pair and
 * level is still measured.
 */
export function scaleSizes(sizes: Sizes, factor: number): Sizes {
  const scale = (value: number, least = 1) => Math.max(least, Math.round(value * factor));
  return {
    ...sizes,
    startBatch: scale(sizes.startBatch),
    latencyBatch: scale(sizes.latencyBatch),
    sessionBatch: scale(sizes.sessionBatch, 2),
    sessionsPerCaller: scale(sizes.sessionsPerCaller),
    auditBatch: scale(sizes.auditBatch, 10),
    companionSeconds: scale(sizes.companionSeconds, 1),
    watchLevels: sizes.watchLevels.map((level) => (level === 0 ? 0 : scale(level))),
    growthMinCalls: scale(sizes.growthMinCalls),
    growthCallsPerInFlight: scale(sizes.growthCallsPerInFlight),
  };
}

const START_IN_FLIGHT = 32;
const COMPANION_IN_FLIGHT = 32;
const AUDIT_IN_FLIGHT = 32;
const SESSION_CALLERS = [8, 32];
/** The protocols P2 starts over (gRPC-Web is a browser's; P4 covers it). */
const START_PROTOCOLS = ["grpc", "rest", "connect"] as const;
type StartProtocol = (typeof START_PROTOCOLS)[number];
const GET_PROTOCOLS: Protocol[] = ["grpc", "grpc-web", "connect", "rest"];

/** What the pairs share: the stack, clients and names unique to this run. */
export interface PairContext {
  stack: BenchStack;
  sizes: Sizes;
  /** Prefix of every session id this run starts. */
  run: string;
  /** Session ids issued so far (their suffix). */
  idsIssued: number;
  sessions: Client<typeof SessionService>;
  /** A finished session of the main API, for the Get pairs. */
  finishedWorkflowId: string;
  /** Watch delays (ms) recorded by P5's whole sessions, for P6. */
  watchDelays: number[];
  /** API memory by open streams, recorded by P7, for the growth series. */
  watchLevels: WatchLevel[];
  bare: BareSessions;
}

/** A session id unique to this run. */
function sessionId(context: PairContext, label: string): string {
  return `${context.run}-${label}-${context.idsIssued++}`;
}

/** Starts sessions with `Start` over `protocol` through a client of its own. */
function protocolStarts(context: PairContext, client: H2Client, protocol: Protocol, label: string) {
  return async () => {
    const call = startCall(protocol, sessionId(context, label));
    expectSuccess(protocol, call, await client.request(call));
  };
}

function skipped(id: string, title: string, reason: string): PairResult {
  return { id, title, rows: [], verdicts: [], skipped: reason };
}

const IDLE_API_MISSING = "needs an API on a task queue no worker polls (BENCH_IDLE_TARGET and BENCH_IDLE_TASK_QUEUE)";

/** P1: Start throughput over gRPC at 32 in flight vs the raw SDK start. */
export async function p1StartThroughput(context: PairContext): Promise<PairResult> {
  const title = `Start throughput over gRPC, ${START_IN_FLIGHT} in flight, vs raw SDK workflow.start`;
  const { idleApi } = context.stack;
  if (!idleApi) return skipped("P1", title, IDLE_API_MISSING);
  const raw = await createRawStarter(context.stack.temporalAddress, context.stack.namespace, idleApi.taskQueue);
  const client = createH2Client(idleApi.url.origin);
  try {
    const grpcStart = protocolStarts(context, client, "grpc", "p1");
    const batches = await alternate(context.sizes, {
      api: () => drive(context.sizes.startBatch, START_IN_FLIGHT, grpcStart),
      raw: () => drive(context.sizes.startBatch, START_IN_FLIGHT, () => raw.start(sessionId(context, "p1raw"))),
    });
    const api = summarize(batches.api);
    const floor = summarize(batches.raw);
    return {
      id: "P1",
      title,
      rows: [
        { side: "A: API gRPC Start", summary: api },
        { side: "B: raw SDK start", summary: floor },
      ],
      verdicts: [ratioVerdict("throughput A/B", api.perSecond / floor.perSecond, "≥", 0.95)],
      note: "both sides start session-start-workflow with the same input and start options (id policy, memos, search attributes) on the idle task queue (no worker), so Temporal does the same work and no worker competes for the CPU",
    };
  } finally {
    await client.close();
    await raw.close();
  }
}

/** P2: Start p50 over gRPC, REST and Connect JSON at 1 in flight vs the raw start. P3's Start half comes from the same batches. */
export async function p2p3StartLatency(context: PairContext): Promise<{ p2: PairResult; startRows: Record<StartProtocol, Summary> | undefined }> {
  const title = "Start p50, 1 in flight, over gRPC, REST and Connect JSON vs raw SDK start";
  const { idleApi } = context.stack;
  if (!idleApi) return { p2: skipped("P2", title, IDLE_API_MISSING), startRows: undefined };
  const raw = await createRawStarter(context.stack.temporalAddress, context.stack.namespace, idleApi.taskQueue);
  const client = createH2Client(idleApi.url.origin);
  try {
    const one = (task: () => Promise<void>) => () => drive(context.sizes.latencyBatch, 1, task);
    const batches = await alternate(context.sizes, {
      raw: one(() => raw.start(sessionId(context, "p2raw"))),
      grpc: one(protocolStarts(context, client, "grpc", "p2")),
      rest: one(protocolStarts(context, client, "rest", "p2")),
      connect: one(protocolStarts(context, client, "connect", "p2")),
    });
    const floor = summarize(batches.raw);
    const startRows = Object.fromEntries(START_PROTOCOLS.map((p) => [p, summarize(batches[p])])) as Record<StartProtocol, Summary>;
    return {
      p2: {
        id: "P2",
        title,
        rows: [{ side: "B: raw SDK start", summary: floor }, ...START_PROTOCOLS.map((p) => ({ side: `A: API ${p} Start`, summary: startRows[p] }))],
        verdicts: START_PROTOCOLS.map((p) => {
          const added = startRows[p].p50 - floor.p50;
          return { what: `${p} p50 − raw p50`, value: `${added.toFixed(2)} ms`, bar: "≤ 1.5 ms", met: added <= 1.5 };
        }),
        note: "same idle task queue and payload work as P1; one h2c client drives every protocol",
      },
      startRows,
    };
  } finally {
    await client.close();
    await raw.close();
  }
}

/** A batch of Gets of the finished session over `protocol`, one in flight. */
function getBatch(context: PairContext, client: H2Client, protocol: Protocol) {
  return () =>
    drive(context.sizes.latencyBatch, 1, async () => {
      const call = getCall(protocol, context.finishedWorkflowId);
      expectSuccess(protocol, call, await client.request(call));
    });
}

/**
 * The API answers a closed session's Get from memory for 30 s after it read
 * it from Temporal: one unmeasured Get per protocol first, so neither side's
 * first measured call is the one that reads Temporal. A later re-read (after
 * the 30 s) lands in whichever side runs then; it moves a p99, not a p50.
 */
async function warmGets(context: PairContext, client: H2Client, protocols: readonly Protocol[]): Promise<Array<{ call: Call; answer: Answer }>> {
  const answers = [];
  for (const protocol of protocols) {
    const call = getCall(protocol, context.finishedWorkflowId);
    const answer = await client.request(call);
    expectSuccess(protocol, call, answer);
    answers.push({ call, answer });
  }
  return answers;
}

const GET_FROM_MEMORY_NOTE = "the API answers a closed session's Get from memory for 30 s after reading it from Temporal: one unmeasured Get per protocol warms it, and a re-read every 30 s falls in whichever batch runs then";

/** P3: REST Start and Get p50 vs Connect JSON (Start from P2's batches, Get measured here). */
export async function p3RestVsConnect(context: PairContext, startRows: Record<StartProtocol, Summary> | undefined): Promise<PairResult> {
  const client = createH2Client(context.stack.api.origin);
  const batches = await warmGets(context, client, ["rest", "connect"])
    .then(() => alternate(context.sizes, { rest: getBatch(context, client, "rest"), connect: getBatch(context, client, "connect") }))
    .finally(() => client.close());
  const rest = summarize(batches.rest);
  const connect = summarize(batches.connect);
  const rows: SideRow[] = [
    { side: "A: REST Get", summary: rest },
    { side: "B: Connect JSON Get", summary: connect },
  ];
  const verdicts = [ratioVerdict("Get p50 A/B", rest.p50 / connect.p50, "≤", 1.15)];
  if (startRows) {
    rows.unshift({ side: "A: REST Start", summary: startRows.rest }, { side: "B: Connect JSON Start", summary: startRows.connect });
    verdicts.unshift(ratioVerdict("Start p50 A/B", startRows.rest.p50 / startRows.connect.p50, "≤", 1.15));
  }
  return {
    id: "P3",
    title: "REST Start and Get p50 vs Connect JSON",
    rows,
    verdicts,
    note: `Start from P2's alternating batches${startRows ? "" : " (skipped: " + IDLE_API_MISSING + ")"}; Get of a finished session, REST and Connect alternating; ${GET_FROM_MEMORY_NOTE}`,
  };
}

/** P4: Get of a finished session over each protocol vs a plain node:http2 server answering the same bytes. */
export async function p4CheapRpc(context: PairContext): Promise<PairResult> {
  const api = createH2Client(context.stack.api.origin);
  // The answers the floor replays are read by the same Gets that warm the API's memory.
  const recorded = await warmGets(context, api, GET_PROTOCOLS).finally(() => api.close());
  const floor = await serveRecordedAnswers(recorded);
  try {
    const sides: Record<string, () => Promise<Batch>> = {};
    const clients = new Map<string, H2Client>();
    for (const p of GET_PROTOCOLS) {
      for (const [where, origin] of [["api", context.stack.api.origin], ["floor", floor.url]] as const) {
        const client = createH2Client(origin);
        clients.set(`${where} ${p}`, client);
        sides[`${where} ${p}`] = getBatch(context, client, p);
      }
    }
    try {
      const batches = await alternate(context.sizes, sides);
      const rows: SideRow[] = [];
      const verdicts = GET_PROTOCOLS.map((p) => {
        const ours = summarize(batches[`api ${p}`]!);
        const bare = summarize(batches[`floor ${p}`]!);
        rows.push({ side: `A: API ${p} Get`, summary: ours }, { side: `B: node:http2, same bytes (${p})`, summary: bare });
        return ratioVerdict(`${p} p50 A/B`, ours.p50 / bare.p50, "≤", 1.3);
      });
      return {
        id: "P4",
        title: "Get of a finished session per protocol vs plain node:http2 answering the same bytes",
        rows,
        verdicts,
        note: `the floor (a child process with the API's Node and flags) replays the API's recorded headers, body and trailers for each protocol; both driven by the same h2c client, one in flight; ${GET_FROM_MEMORY_NOTE}`,
      };
    } finally {
      for (const client of clients.values()) await client.close();
    }
  } finally {
    await floor.stop();
  }
}

/** Milliseconds since the epoch, with the sub-millisecond part of the monotonic clock. */
function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * One whole session through the main API: gRPC Start, then Watch to the
 * terminal event. Records the delay of each event that happened after the
 * Watch was opened (receipt time − the event's history time) in `delays`;
 * events already in history when it opened are catch-up, not delay.
 */
export async function wholeSession(context: PairContext, label: string, delays?: number[]): Promise<string> {
  const started = await context.sessions.start({ tenant: "tenant-demo", user: "user-demo", prompt: "kick off a demo", metadata: { session_id: sessionId(context, label) } });
  const opened = nowMs();
  let last: WatchResponse | undefined;
  for await (const event of context.sessions.watch({ workflowId: started.workflowId })) {
    const received = nowMs();
    const eventMs = event.time ? Number(event.time.seconds) * 1000 + event.time.nanos / 1e6 : Number.NaN;
    if (delays && eventMs >= opened) delays.push(received - eventMs);
    last = event;
  }
  if (last?.event.case !== "completed") throw new Error(`session ${started.workflowId} ended with ${last?.event.case ?? "no event"}`);
  return started.workflowId;
}

/** P5: whole session, one caller, vs the bare four-no-op workflow. */
export async function p5WholeSession(context: PairContext): Promise<PairResult> {
  const batches = await alternate(context.sizes, {
    session: (round) => drive(context.sizes.sessionBatch, 1, () => wholeSession(context, "p5", round >= 0 ? context.watchDelays : undefined)),
    bare: () => drive(context.sizes.sessionBatch, 1, () => context.bare.run(sessionId(context, "p5bare"))),
  });
  const session = summarize(batches.session);
  const bare = summarize(batches.bare);
  return {
    id: "P5",
    title: "whole session (gRPC Start → Watch to completed), 1 caller, vs bare workflow of 4 no-op activities",
    rows: [
      { side: "A: whole session", summary: session },
      { side: "B: bare workflow (in-process worker)", summary: bare },
    ],
    verdicts: [ratioVerdict("p50 A/B", session.p50 / bare.p50, "≤", 1.5)],
    note: "A: real policy engine, identity service, Ray Serve and Kafka; B: the bench's own worker on its own task queue, same dev server, client waits for the result",
  };
}

/** P5b: sessions/s at 8 and 32 callers vs the bare workflow. */
export async function p5bSessionThroughput(context: PairContext): Promise<PairResult> {
  const rows: SideRow[] = [];
  const verdicts = [];
  for (const callers of SESSION_CALLERS) {
    const count = callers * context.sizes.sessionsPerCaller;
    const batches = await alternate(context.sizes, {
      session: () => drive(count, callers, () => wholeSession(context, "p5b")),
      bare: () => drive(count, callers, () => context.bare.run(sessionId(context, "p5bbare"))),
    });
    const session = summarize(batches.session);
    const bare = summarize(batches.bare);
    rows.push({ side: `A: whole sessions, ${callers} callers`, summary: session }, { side: `B: bare workflows, ${callers} callers`, summary: bare });
    verdicts.push(ratioVerdict(`${callers} callers sessions/s A/B`, session.perSecond / bare.perSecond, "≥", 0.8));
  }
  return { id: "P5b", title: "sessions/s at 8 and 32 callers vs the bare workflow", rows, verdicts };
}

/** P6: Watch delay, from P5's sessions. */
export function p6WatchDelay(context: PairContext): PairResult {
  const delays = context.watchDelays;
  const p50 = quantile(delays, 0.5);
  const p99 = quantile(delays, 0.99);
  return {
    id: "P6",
    title: "Watch delay: history event time → client receives it",
    rows: [{ side: "event delay (P5's measured sessions)", summary: { n: delays.length, p50, p99, perSecond: Number.NaN } }],
    verdicts: [
      { what: "p50", value: `${p50.toFixed(1)} ms`, bar: "≤ 10 ms", met: p50 <= 10 },
      { what: "p99", value: `${p99.toFixed(1)} ms`, bar: "≤ 50 ms", met: p99 <= 50 },
    ],
    note: "events that happened after the Watch was opened; event time is Temporal's history event time, same machine clock",
  };
}

/** The API's own process metrics from its /metrics (prom-client defaults). */
async function processMetrics(api: URL): Promise<{ rssBytes: number; cpuSeconds: number }> {
  const response = await fetch(new URL("/metrics", api), { signal: AbortSignal.timeout(10_000) });
  if (!response.ok) throw new Error(`${api.origin}/metrics: HTTP ${response.status}`);
  const text = await response.text();
  const value = (name: string) => {
    const match = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
    if (!match) throw new Error(`${api.origin}/metrics has no ${name} (prom-client default metrics)`);
    return Number(match[1]);
  };
  return { rssBytes: value("process_resident_memory_bytes"), cpuSeconds: value("process_cpu_seconds_total") };
}

/** Idle CPU (% of one core) of the API over `windowMs`, and its RSS at the end. */
async function idleReading(api: URL, windowMs: number): Promise<{ rssBytes: number; idleCpuPercent: number }> {
  const before = await processMetrics(api);
  const began = performance.now();
  await new Promise((resolve) => setTimeout(resolve, windowMs));
  const after = await processMetrics(api);
  return { rssBytes: after.rssBytes, idleCpuPercent: ((after.cpuSeconds - before.cpuSeconds) * 1000 * 100) / (performance.now() - began) };
}

/**
 * P7: open Watch streams on sessions that stay open (started through the idle
 * API, whose task queue no worker polls), one session per stream, gRPC over
 * connections of {@link STREAMS_PER_CONNECTION}; API RSS and idle CPU at each
 * level, from its /metrics.
 */
export async function p7OpenWatches(context: PairContext): Promise<PairResult> {
  const title = "open Watch streams vs API RSS without them";
  const { idleApi } = context.stack;
  if (!idleApi) return skipped("P7", title, IDLE_API_MISSING);
  const starter = createH2Client(idleApi.url.origin);
  const connections: H2Client[] = [];
  let open = 0;
  try {
    for (const level of context.sizes.watchLevels) {
      const more = level - open;
      const ids = Array.from({ length: more }, () => sessionId(context, "p7"));
      await drive(more, START_IN_FLIGHT, async (i) => {
        const call = startCall("grpc", ids[i]!);
        expectSuccess("grpc", call, await starter.request(call));
      });
      // A stream counts as open once its first event (SessionStarted) has arrived: a gRPC frame header and more.
      await drive(more, START_IN_FLIGHT, async (i) => {
        const index = open + i;
        const connection = (connections[Math.floor(index / STREAMS_PER_CONNECTION)] ??= createH2Client(idleApi.url.origin));
        await connection.open(watchCall(`session-${ids[i]!}`), 6);
      });
      open = level;
      const reading = await idleReading(idleApi.url, context.sizes.idleCpuWindowMs);
      const held = connections.reduce((sum, connection) => sum + connection.heldStreams(), 0);
      context.watchLevels.push({ streams: level, held, ...reading });
    }
  } finally {
    for (const connection of connections) await connection.close();
    await starter.close();
  }
  const [base, ...levels] = context.watchLevels;
  const top = levels.at(-1);
  if (!base || !top) return skipped("P7", title, "no stream levels configured");
  const perStreamKb = (level: WatchLevel) => (level.rssBytes - base.rssBytes) / level.streams / 1024;
  return {
    id: "P7",
    title,
    rows: [],
    verdicts: [
      { what: "streams still open after the reading", value: `${top.held} of ${top.streams}`, bar: `all ${top.streams}`, met: top.held === top.streams },
      { what: `RSS per stream at ${top.streams} streams`, value: `${perStreamKb(top).toFixed(1)} KB`, bar: "≤ 25 KB", met: perStreamKb(top) <= 25 },
      { what: `idle CPU at ${top.streams} streams`, value: `${top.idleCpuPercent.toFixed(2)} %`, bar: "≤ 2 %", met: top.idleCpuPercent <= 2 },
    ],
    note:
      context.watchLevels.map((l) => `${l.streams} streams (${l.held} held): RSS ${(l.rssBytes / 2 ** 20).toFixed(1)} MiB, idle CPU ${l.idleCpuPercent.toFixed(2)} %`).join("; ") +
      ` (one level after the other, not alternated: the floor is the same process before the streams; RSS is not compacted by a GC the bench cannot trigger)`,
  };
}

/** P8: audit publishing through the worker's one idempotent producer vs one new producer per event. */
export async function p8AuditPublishing(context: PairContext): Promise<PairResult> {
  const title = "audit events/s: the worker's one idempotent producer vs a new producer per event";
  const bootstrap = context.stack.kafkaBootstrap;
  if (!bootstrap) return skipped("P8", title, "needs the Kafka bootstrap servers (BENCH_KAFKA)");
  // Its own topic, so no consumer of agent.audit reads benchmark events.
  const topic = `bench.audit.${context.run}`;
  const shared = createAuditProducer(
    loadKafkaConfig({ KAFKA_BOOTSTRAP_SERVERS: bootstrap, KAFKA_AUDIT_TOPIC: topic, KAFKA_CLIENT_ID: "bench-audit" }),
    createLogger("bench"),
    createMetricsRegistry({ processMetrics: false }),
  );
  await shared.start();
  const perEvent = createProducerPerEvent(bootstrap, topic);
  const event = (id: string) => ({ auditId: id, sessionId: id, workflowId: `session-${id}`, tenant: "tenant-demo", user: "user-demo", status: "AUDIT_STATUS_ACCEPTED" as const, model: "somagent-demo" });
  try {
    // Whole multiples of the in-flight count, at least one: a batch smaller than it (B's tenth was 8 at
    // BENCH_SCALE=0.2) never had 32 in flight and understated that side's rate.
    const keepingInFlight = (events: number) => AUDIT_IN_FLIGHT * Math.max(1, Math.round(events / AUDIT_IN_FLIGHT));
    const sharedBatch = keepingInFlight(context.sizes.auditBatch);
    const perEventBatch = keepingInFlight(context.sizes.auditBatch / 10);
    const batches = await alternate(context.sizes, {
      shared: () => drive(sharedBatch, AUDIT_IN_FLIGHT, () => shared.publish(event(sessionId(context, "p8")))),
      perEvent: () =>
        drive(perEventBatch, AUDIT_IN_FLIGHT, async () => {
          const id = sessionId(context, "p8each");
          await perEvent(id, auditRecord(event(id)));
        }),
    });
    const a = summarize(batches.shared);
    const b = summarize(batches.perEvent);
    return {
      id: "P8",
      title,
      rows: [
        { side: "A: one idempotent producer (src/clients/audit-producer.ts)", summary: a },
        { side: "B: new kafkajs producer per event", summary: b },
      ],
      verdicts: [ratioVerdict("events/s A/B", a.perSecond / b.perSecond, "≥", 10)],
      note: `${AUDIT_IN_FLIGHT} events in flight on both sides, acks=all, topic ${topic}; B publishes a tenth of A's events per batch (each costs a connection); both batches are whole multiples of ${AUDIT_IN_FLIGHT} (${sharedBatch} and ${perEventBatch}), so each side keeps ${AUDIT_IN_FLIGHT} in flight`,
    };
  } finally {
    await shared.stop();
  }
}

/** One autocannon run: `seconds` of load from a fixed number of connections, each with one request in flight. */
async function cannon(url: URL, seconds: number, init: { method?: "POST"; headers?: Record<string, string>; body?: string }): Promise<autocannon.Result> {
  const result = await autocannon({ url: url.href, connections: COMPANION_IN_FLIGHT, duration: seconds, ...init });
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${url.href}: ${result.non2xx} non-2xx answers, ${result.errors} errors`);
  return result;
}

/** Rounds of autocannon results as one row: p50 and p99 are the medians of the rounds' own, the rate is total requests over total time. */
function summarizeCannon(results: autocannon.Result[]): Summary {
  const median = (values: number[]) => quantile(values, 0.5);
  const requests = results.reduce((sum, r) => sum + r.requests.total, 0);
  const seconds = results.reduce((sum, r) => sum + r.duration, 0);
  return { n: requests, p50: median(results.map((r) => r.latency.p50)), p99: median(results.map((r) => r.latency.p99)), perSecond: requests / seconds };
}

/** P9: policy evaluate and identity issue at 32 in flight vs the same service's /health. */
export async function p9Companions(context: PairContext): Promise<PairResult> {
  const title = `policy evaluate and identity issue at ${COMPANION_IN_FLIGHT} in flight vs the same service's /health (autocannon)`;
  const { policyEngine, identityService, identityClient } = context.stack;
  if (!policyEngine || !identityService || !identityClient) {
    return skipped("P9", title, "needs BENCH_POLICY_ENGINE, BENCH_IDENTITY_SERVICE and BENCH_IDENTITY_CLIENT_SECRET");
  }
  const json = { "content-type": "application/json" };
  const basic = `Basic ${Buffer.from(`${identityClient.id}:${identityClient.secret}`).toString("base64")}`;
  const n = context.sizes.companionSeconds;
  const batches = await alternate(context.sizes, {
    evaluate: () =>
      cannon(new URL("/v1/evaluate", policyEngine), n, {
        method: "POST",
        headers: json,
        body: JSON.stringify({ session_id: "bench", tenant: "tenant-demo", user: "user-demo", role: "user", prompt: "kick off a demo", metadata: {} }),
      }),
    policyHealth: () => cannon(new URL("/health", policyEngine), n, {}),
    issue: () =>
      cannon(new URL("/v1/tokens/issue", identityService), n, {
        method: "POST",
        headers: { ...json, authorization: basic },
        body: JSON.stringify({ user_id: "user-demo", tenant_id: "tenant-demo", capabilities: ["session:start"] }),
      }),
    identityHealth: () => cannon(new URL("/health", identityService), n, {}),
  });
  const evaluate = summarizeCannon(batches.evaluate);
  const policyHealth = summarizeCannon(batches.policyHealth);
  const issue = summarizeCannon(batches.issue);
  const identityHealth = summarizeCannon(batches.identityHealth);
  return {
    id: "P9",
    title,
    rows: [
      { side: "A: POST /v1/evaluate", summary: evaluate },
      { side: "B: policy engine GET /health", summary: policyHealth },
      { side: "A: POST /v1/tokens/issue", summary: issue },
      { side: "B: identity service GET /health", summary: identityHealth },
    ],
    verdicts: [
      ratioVerdict("evaluate/health req/s", evaluate.perSecond / policyHealth.perSecond, "≥", 0.5),
      ratioVerdict("issue/health req/s", issue.perSecond / identityHealth.perSecond, "≥", 0.5),
    ],
    note: `autocannon, ${COMPANION_IN_FLIGHT} HTTP/1.1 keep-alive connections, one request in flight each; p50/p99 are the medians of the rounds' own`,
  };
}

/** The growth series: Start (idle API, gRPC) and whole session (main API) at each in-flight level. */
export async function growthSeries(context: PairContext): Promise<{ start: Array<{ inFlight: number; summary: Summary }>; session: Array<{ inFlight: number; summary: Summary }> }> {
  const { sizes } = context;
  const count = (inFlight: number) => Math.max(sizes.growthMinCalls, inFlight * sizes.growthCallsPerInFlight);
  const start: Array<{ inFlight: number; summary: Summary }> = [];
  const { idleApi } = context.stack;
  if (idleApi) {
    const client = createH2Client(idleApi.url.origin);
    try {
      for (const inFlight of sizes.growthInFlight) {
        start.push({ inFlight, summary: summarize([await drive(count(inFlight), inFlight, protocolStarts(context, client, "grpc", "grow"))]) });
      }
    } finally {
      await client.close();
    }
  }
  const session: Array<{ inFlight: number; summary: Summary }> = [];
  for (const inFlight of sizes.growthInFlight) {
    session.push({ inFlight, summary: summarize([await drive(count(inFlight), inFlight, () => wholeSession(context, "grow"))]) });
  }
  return { start, session };
}

/** Everything the pairs share, ready: a finished session to Get, the bare worker, a session client. */
export async function preparePairs(stack: BenchStack, sizes: Sizes): Promise<PairContext & { close(): Promise<void> }> {
  const transport = createGrpcTransport({ baseUrl: stack.api.origin });
  const sessions = createClient(SessionService, transport);
  const bare = await startBareSessions(stack.temporalAddress, stack.namespace);
  const context: PairContext = {
    stack,
    sizes,
    run: `bench-${randomBytes(4).toString("hex")}`,
    idsIssued: 0,
    sessions,
    finishedWorkflowId: "",
    watchDelays: [],
    watchLevels: [],
    bare,
  };
  context.finishedWorkflowId = await wholeSession(context, "finished");
  return { ...context, close: () => bare.stop() };
}
