/**
 * The scenarios of issue 13's fault suite. Each starts a batch of sessions
 * through the API, injects its fault while they are in flight, waits until
 * every session has ended, and judges them (verdict.ts). Sizes and outage
 * lengths come from the {@link SuiteMode}.
 */
import { loadKafkaConfig } from "../../src/config.js";
import { ACTIVITY } from "../../src/workflows/contract.js";
import { readAuditLedger } from "./audit-ledger.js";
import type { FaultStack } from "./fault-stack.js";
import type { SessionClient } from "./session-client.js";
import { judge, type Design, type Row, type SessionOutcome } from "./verdict.js";

/** How big the batches are and how long the outages last. */
export interface SuiteMode {
  name: "full" | "bounded";
  /** Sessions per scenario. */
  sessions: number;
  /** How long the Kafka broker stays down (scenario 2). */
  kafkaOutageMs: number;
  /** How long Ray stays down before its restart inside the budget (scenario 4a). */
  rayOutageMs: number;
  /** `RAY_SERVE_RETRY_BUDGET_MS` while Ray is kept down past it (scenario 4b). */
  rayShortBudgetMs: number;
  /** How long, after its fault, a batch may take to end. */
  settleMs: number;
  /** Which scenarios run. */
  scenarios: readonly string[];
}

/** What a scenario works with. */
export interface ScenarioContext {
  stack: FaultStack;
  client: SessionClient;
  mode: SuiteMode;
  /** Progress lines for the log. */
  log(line: string): void;
}

/** A scenario's table row and the checks of its own that failed (empty when all held). */
export interface ScenarioResult {
  row: Row;
  violations: string[];
}

/** One scenario of the suite. */
export interface Scenario {
  id: string;
  title: string;
  run(context: ScenarioContext): Promise<ScenarioResult>;
}

/** Sessions started side by side: a steady stream rather than one burst, so the fault lands mid-batch. */
const STARTS_IN_PARALLEL = 5;

const COMPLETES: Design = { completes: true };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Starts `count` sessions, {@link STARTS_IN_PARALLEL} at a time. */
async function startSessions(context: ScenarioContext, label: string, count: number): Promise<{ sessionId: string; workflowId: string }[]> {
  const deadline = Date.now() + context.mode.settleMs;
  const started: { sessionId: string; workflowId: string }[] = [];
  for (let i = 0; i < count; i += STARTS_IN_PARALLEL) {
    const wave = Math.min(STARTS_IN_PARALLEL, count - i);
    started.push(...(await Promise.all(Array.from({ length: wave }, () => context.client.start(label, deadline)))));
  }
  return started;
}

/** Waits until every session has ended (or the settle time passed), reads the audit topic and judges the batch. */
async function settle(
  context: ScenarioContext,
  title: string,
  sessions: { sessionId: string; workflowId: string }[],
  design: Design,
): Promise<Row> {
  const deadline = Date.now() + context.mode.settleMs;
  const outcomes: SessionOutcome[] = await Promise.all(
    sessions.map(async (session) => ({ ...session, end: await context.client.waitForEnd(session.workflowId, deadline) })),
  );
  const ledger = await readAuditLedger(context.stack.infra.kafka.bootstrap, loadKafkaConfig().auditTopic);
  return judge(title, outcomes, ledger, context.stack.temporal, design);
}

/**
 * The common shape: a third of the batch is started, then `fault` runs while
 * the rest is started, then the batch is judged against `design`.
 */
async function faultMidBatch(context: ScenarioContext, scenario: Pick<Scenario, "id" | "title">, fault: () => Promise<void>, design = COMPLETES): Promise<Row> {
  const label = `fault${scenario.id}`;
  const first = Math.ceil(context.mode.sessions / 3);
  const sessions = await startSessions(context, label, first);
  const [, rest] = await Promise.all([fault(), startSessions(context, label, context.mode.sessions - first)]);
  return settle(context, scenario.title, [...sessions, ...rest], design);
}

/** The `scheduleToCloseTimeout` of a session's first `run-slm-completion`, in ms, as its history records it. */
async function completionBudgetMs(stack: FaultStack, workflowId: string): Promise<number | undefined> {
  const { history } = await stack.temporal.workflowService.getWorkflowExecutionHistory({ namespace: "default", execution: { workflowId } });
  for (const event of history?.events ?? []) {
    const scheduled = event.activityTaskScheduledEventAttributes;
    if (scheduled?.activityType?.name === ACTIVITY.runSlmCompletion) {
      const timeout = scheduled.scheduleToCloseTimeout;
      return Number(timeout?.seconds ?? 0) * 1000 + Math.round((timeout?.nanos ?? 0) / 1e6);
    }
  }
  return undefined;
}

const scenario = (id: string, title: string, run: (context: ScenarioContext, self: { id: string; title: string }) => Promise<ScenarioResult>): Scenario => ({
  id,
  title,
  run: (context) => run(context, { id, title }),
});

/** Every scenario, in the order the suite runs them. */
export const SCENARIOS: readonly Scenario[] = [
  scenario("1", "1 worker SIGKILL, restarted", async (context, self) => {
    const row = await faultMidBatch(context, self, async () => {
      const [worker] = context.stack.workers;
      context.log(`SIGKILL ${worker!.name}`);
      await context.stack.killWorker(worker!);
      const restarted = await context.stack.addWorker();
      context.log(`${restarted.name} started`);
    });
    return { row, violations: [] };
  }),

  scenario("2", "2 Kafka broker down, restarted", async (context, self) => {
    const row = await faultMidBatch(context, self, async () => {
      await context.stack.infra.kafka.stop();
      context.log(`Kafka stopped; down for ${context.mode.kafkaOutageMs / 1000} s`);
      await sleep(context.mode.kafkaOutageMs);
      await context.stack.infra.kafka.restart();
      context.log("Kafka restarted on the same port and data");
    });
    return { row, violations: [] };
  }),

  scenario("3a", "3a policy engine 503 to a share", async (context, self) => {
    const { policyProxy } = context.stack;
    // Every session's first request and every third session's second: retries see the engine through.
    policyProxy.inject({ kind: "unavailable", attempts: (order) => (order % 3 === 0 ? 2 : 1) });
    const row = await faultMidBatch(context, self, async () => {});
    const counts = [...policyProxy.requestsBySession().values()];
    policyProxy.inject({ kind: "none" });
    const total = counts.reduce((sum, c) => sum + c.requests, 0);
    const refused = counts.reduce((sum, c) => sum + c.unavailable, 0);
    context.log(`policy requests: ${total}, answered 503 by the injector: ${refused} (${Math.round((100 * refused) / total)} %)`);
    return { row, violations: refused === 0 ? ["no request was answered 503"] : [] };
  }),

  scenario("3b", "3b policy engine 400", async (context, self) => {
    const { policyProxy } = context.stack;
    policyProxy.inject({ kind: "malformed" });
    const row = await faultMidBatch(context, self, async () => {}, { completes: false, fails: /^policy engine refused: .*prompt/ });
    const counts = policyProxy.requestsBySession();
    policyProxy.inject({ kind: "none" });
    const violations = [...counts].filter(([, c]) => c.requests !== 1).map(([id, c]) => `${id}: ${c.requests} policy requests, expected 1`);
    if (counts.size !== row.sessions) violations.push(`${counts.size} sessions reached the policy engine, expected ${row.sessions}`);
    return { row, violations };
  }),

  scenario("4a", "4a Ray down, restarted inside budget", async (context, self) => {
    const row = await faultMidBatch(context, self, async () => {
      await context.stack.infra.ray.stop();
      context.log(`Ray stopped; down for ${context.mode.rayOutageMs / 1000} s`);
      await sleep(context.mode.rayOutageMs);
      await context.stack.infra.ray.restart();
      context.log("Ray restarted on the same GCS, dashboard and Serve ports (empty: the worker deploys the Serve application again)");
    });
    return { row, violations: [] };
  }),

  scenario("4b", "4b Ray down past budget", async (context, self) => {
    const { stack } = context;
    // A budget must hold one whole attempt (RAY_SERVE_TIMEOUT_MS + 5 s), so the attempt is shortened with it.
    await stack.reconfigure({
      RAY_SERVE_RETRY_BUDGET_MS: String(context.mode.rayShortBudgetMs),
      RAY_SERVE_TIMEOUT_MS: String(context.mode.rayShortBudgetMs - 7_000),
    });
    const label = `fault${self.id}`;
    const first = Math.ceil(context.mode.sessions / 3);
    const sessions = await startSessions(context, label, first);
    await stack.infra.ray.stop();
    const stoppedAt = Date.now();
    context.log("Ray stopped, kept down until every session has ended");
    sessions.push(...(await startSessions(context, label, context.mode.sessions - first)));
    const design: Design = { completes: true, fails: /^Ray Serve unreachable after its retry budget/ };
    const row = await settle(context, self.title, sessions, design);
    const budgets = await Promise.all(sessions.map((s) => completionBudgetMs(stack, s.workflowId)));
    context.log(
      `Ray down ${Math.round((Date.now() - stoppedAt) / 1000)} s; run-slm-completion budget in history: ` +
        `${[...new Set(budgets.filter((b) => b !== undefined).map((b) => `${b! / 1000} s`))].join(", ")} ` +
        `(RAY_SERVE_RETRY_BUDGET_MS=${context.mode.rayShortBudgetMs} given)`,
    );
    await stack.infra.ray.restart();
    await stack.reconfigure({});
    const violations = row.failedAsDesigned === 0 ? ["no session failed on Ray's budget: the outage did not reach a completion"] : [];
    return { row, violations };
  }),

  scenario("5", "5 API restarted under Watch", async (context, self) => {
    const { stack, client } = context;
    // A slow policy engine keeps every session running until the API is down (released then, well inside the policy budget).
    stack.policyProxy.inject({ kind: "hold" });
    const sessions = await startSessions(context, `fault${self.id}`, context.mode.sessions);
    const deadline = Date.now() + context.mode.settleMs;
    const watches = sessions.map((s) => client.watchToEnd(s.workflowId, deadline));
    // Every client has its first event (or a Watch failed, which fails the scenario at once).
    await Promise.all(sessions.map((s, i) => Promise.race([client.firstEvent(s.workflowId), watches[i]])));
    context.log(`${sessions.length} clients watching; restarting the API`);
    await stack.restartApi(() => stack.policyProxy.release());
    const watched = await Promise.all(watches);
    stack.policyProxy.inject({ kind: "none" });
    const row = await settle(context, self.title, sessions, COMPLETES);
    const violations: string[] = [];
    for (const [i, { sequences, resumes }] of watched.entries()) {
      const { workflowId } = sessions[i]!;
      // Read again in one go after the end: the events every client must have seen, once each.
      const { sequences: all } = await client.watchToEnd(workflowId, deadline);
      if (sequences.join() !== all.join()) violations.push(`${workflowId}: saw ${sequences.join(",")}, history has ${all.join(",")}`);
      if (resumes === 0) violations.push(`${workflowId}: the restart did not interrupt its Watch`);
    }
    context.log(`resumes per client: ${[...new Set(watched.map((w) => w.resumes))].sort().join(", ")}`);
    return { row, violations };
  }),

  scenario("6", "6 Temporal restarted on its database", async (context, self) => {
    const row = await faultMidBatch(context, self, async () => {
      await context.stack.infra.temporal.restart();
      context.log("Temporal dev server restarted on the same database and port");
    });
    return { row, violations: [] };
  }),

  scenario("7", "7 two workers, one SIGKILLed", async (context, self) => {
    const { stack } = context;
    const second = await stack.addWorker();
    context.log(`${stack.workers.map((w) => w.name).join(" and ")} share the task queue`);
    const row = await faultMidBatch(context, self, async () => {
      const victim = stack.workers.find((w) => w !== second)!;
      context.log(`SIGKILL ${victim.name}`);
      await stack.killWorker(victim);
    });
    return { row, violations: [] };
  }),
];
