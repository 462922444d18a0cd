/**
 * The fault suite's own stack, in a fresh state directory: persistent
 * Temporal, Kafka and Ray (local/infrastructure.ts), the companions, worker
 * and API (local/services.ts), and the policy fault injector between the
 * worker and the real policy engine. It kills and restarts its own processes,
 * so it never shares them with other test files.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Connection } from "@temporalio/client";
import { endpointsOf, installInfrastructure, startInfrastructure, type Infrastructure } from "../../local/infrastructure.js";
import { freePort, type Daemon } from "../../local/processes.js";
import { secretEnvironments, startService, startServices, type Services } from "../../local/services.js";
import { startPolicyFaultProxy, type PolicyFaultProxy } from "./policy-fault-proxy.js";

/** A worker or API process this stack started (and may kill or restart). */
export interface StackProcess {
  name: string;
  daemon: Daemon;
}

/** The running stack. */
export interface FaultStack {
  infra: Infrastructure;
  /** The API's base URL (the same port across restarts). */
  apiUrl: URL;
  /** Between the worker and the real policy engine. */
  policyProxy: PolicyFaultProxy;
  /** A connection to Temporal for reading histories and visibility. */
  temporal: Connection;
  /** The workers polling the task queue now. */
  readonly workers: readonly StackProcess[];
  /** Starts one more worker on the task queue. */
  addWorker(): Promise<StackProcess>;
  /** SIGKILLs a worker (no graceful shutdown: its running activities are abandoned) and forgets it. */
  killWorker(worker: StackProcess): Promise<void>;
  /** Stops the API (SIGTERM: it drains its streams), runs `whileDown`, and starts the API again on the same port. */
  restartApi(whileDown?: () => void): Promise<void>;
  /**
   * Restarts the API and every worker with `env` added to the environment the
   * stack was started with (e.g. a shorter retry budget); `{}` goes back to it.
   */
  reconfigure(env: Record<string, string>): Promise<void>;
  /** Holds every process's log (`<name>.log`). */
  stateDir: string;
  /** Stops everything; removes the state directory unless `keepLogs`. Throws when a process survives. */
  stop(keepLogs: boolean): Promise<void>;
}

/** Options of {@link startFaultStack}. */
export interface FaultStackOptions {
  /** Environment of the API and the worker on top of the stack's own (e.g. the retry budgets). */
  env: Record<string, string>;
}

/**
 * Installs (first run only) and starts the whole stack. The worker that
 * startServices starts is replaced by one that reaches the policy engine
 * through the fault injector.
 */
export async function startFaultStack(options: FaultStackOptions): Promise<FaultStack> {
  const stateDir = await mkdtemp(path.join(tmpdir(), "somagent-faults-"));
  const tools = await installInfrastructure();
  const infra = await startInfrastructure(tools, { stateDir, temporal: { ui: false, persistent: true } });
  const codecKeys = `faults:${randomBytes(32).toString("base64")}`;
  let services: Services | undefined;
  let policyProxy: PolicyFaultProxy | undefined;
  const workers: StackProcess[] = [];
  let api: StackProcess | undefined;
  let extraEnv: Record<string, string> = {};
  let workerCount = 0;

  const stopAll = async () => {
    for (const service of [api, ...workers]) await service?.daemon.stop(15_000);
    await services?.stop();
    await policyProxy?.close();
    await infra.stop();
  };

  try {
    services = await startServices(
      endpointsOf(infra),
      { stateDir, codecKeys, env: options.env },
    );
    policyProxy = await startPolicyFaultProxy(services.policyEngine.url);
    const secrets = secretEnvironments({
      ...services.secrets,
      codecKeys,
      rayAuthToken: infra.ray.authToken,
      slmProviderApiKey: process.env.SLM_PROVIDER_API_KEY,
    });
    const started = services;
    const proxy = policyProxy;

    /** Starts one of our entry points as startServices does, with the suite's extra environment. */
    const launch = async (name: string, script: string, healthUrl: URL, env: Record<string, string>): Promise<StackProcess> => {
      const { daemon } = await startService(name, script, healthUrl, healthUrl.pathname, { ...started.env, ...extraEnv, ...env }, stateDir);
      return { name, daemon };
    };
    const launchWorker = async (): Promise<StackProcess> => {
      const metricsPort = await freePort();
      workerCount += 1;
      return launch(`worker-${workerCount}`, "src/worker/main.ts", new URL(`http://127.0.0.1:${metricsPort}/health`), {
        ...secrets.worker,
        POLICY_ENGINE_URL: proxy.url.href,
        WORKER_METRICS_PORT: String(metricsPort),
        WORKER_SDK_METRICS_PORT: String(await freePort()),
      });
    };
    const launchApi = () => launch("api", "src/api/main.ts", new URL("/health", started.api.url), secrets.api);

    // startServices' own worker talks to the engine directly: ours goes through the injector.
    await started.worker.daemon.stop(15_000);
    workers.push(await launchWorker());
    api = { name: "api", daemon: started.api.daemon };

    const temporal = await Connection.connect({ address: infra.temporal.address });
    return {
      infra,
      apiUrl: started.api.url,
      policyProxy: proxy,
      temporal,
      get workers() {
        return workers;
      },
      async addWorker() {
        const worker = await launchWorker();
        workers.push(worker);
        return worker;
      },
      async killWorker(worker) {
        process.kill(-worker.daemon.pid, "SIGKILL");
        await worker.daemon.stop();
        workers.splice(workers.indexOf(worker), 1);
      },
      async restartApi(whileDown) {
        await api?.daemon.stop(15_000);
        whileDown?.();
        api = await launchApi();
      },
      async reconfigure(env) {
        extraEnv = env;
        const count = workers.length;
        for (const worker of workers.splice(0)) await worker.daemon.stop(15_000);
        for (let i = 0; i < count; i++) workers.push(await launchWorker());
        await api?.daemon.stop(15_000);
        api = await launchApi();
      },
      stateDir,
      async stop(keepLogs) {
        await temporal.close();
        await stopAll();
        const left = await infra.pids();
        if (left.length > 0) throw new Error(`processes of the fault stack survived its stop: ${left.join(", ")}`);
        if (!keepLogs) await rm(stateDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
