/**
 * The local infrastructure as one unit: installs Temporal, Kafka and Ray on
 * first use (in parallel), starts them on loopback, and stops them all. Used
 * by `npm start` (fixed ports, state kept across runs) and by the tests'
 * global setup (free ports, a fresh state directory per run).
 */
import { mkdir } from "node:fs/promises";
import { silenceKafkajsNegativeTimeoutWarning } from "../src/shared/kafkajs-warning.js";
import { step } from "./progress.js";
import { installKafka, startKafka, type KafkaBroker } from "./kafka.js";
import { installRay, startRay, type RayCluster } from "./ray.js";
import type { InfrastructureEndpoints } from "./services.js";
import { installTemporal, startTemporal, type TemporalServer } from "./temporal.js";

/** Ports for each component; unset ones are chosen free. */
export interface InfrastructureOptions {
  stateDir: string;
  temporal?: { port?: number; uiPort?: number; ui?: boolean; uiCodecEndpoint?: string; persistent?: boolean };
  kafka?: { port?: number; controllerPort?: number };
  ray?: { gcsPort?: number; dashboardPort?: number; servePort?: number; tempDir?: string };
}

/** The running components. */
export interface Infrastructure {
  temporal: TemporalServer;
  kafka: KafkaBroker;
  ray: RayCluster;
  /** Live process ids of every component, for the no-orphans check. */
  pids(): Promise<number[]>;
  /** Stops every component; resolves once none of their processes is left. */
  stop(): Promise<void>;
}

/** Binaries and install directories, installed on first use. */
export interface InstalledTools {
  temporal: string;
  kafka: string;
  ray: string;
}

/** Installs whatever the cache lacks; the three installs run side by side. */
export async function installInfrastructure(): Promise<InstalledTools> {
  const [temporal, kafka, ray] = await Promise.all([installTemporal(), installKafka(), installRay()]);
  return { temporal, kafka, ray };
}

/**
 * Starts Temporal, Kafka and Ray (side by side) and waits until each is
 * healthy. When one fails, the others are stopped before the error is thrown.
 */
export async function startInfrastructure(tools: InstalledTools, options: InfrastructureOptions): Promise<Infrastructure> {
  await mkdir(options.stateDir, { recursive: true });
  // The Kafka readiness check below is a kafkajs client.
  silenceKafkajsNegativeTimeoutWarning();
  const { stateDir } = options;
  const started = await Promise.allSettled([
    step("starting Temporal dev server", () => startTemporal({ binary: tools.temporal, stateDir, ...options.temporal })),
    step("starting Kafka broker (KRaft)", () => startKafka({ installDir: tools.kafka, stateDir, ...options.kafka })),
    step("starting Ray head node", () => startRay({ binary: tools.ray, stateDir, ...options.ray })),
  ]);
  const components = started.flatMap((result) => (result.status === "fulfilled" ? [result.value] : []));
  const stopAll = async () => {
    await Promise.all(components.map((component) => component.stop()));
  };
  const failures = started.flatMap((result) => (result.status === "rejected" ? [result.reason as Error] : []));
  if (failures.length > 0) {
    await stopAll();
    throw new Error(failures.map((error) => error.message).join("\n\n"));
  }
  const [temporal, kafka, ray] = started.map((result) => (result as PromiseFulfilledResult<unknown>).value) as [
    TemporalServer,
    KafkaBroker,
    RayCluster,
  ];
  return {
    temporal,
    kafka,
    ray,
    pids: async () => (await Promise.all(components.map((component) => component.daemon.pids()))).flat(),
    stop: stopAll,
  };
}

/** Where the services find the infrastructure (what `startServices` takes). */
export function endpointsOf(infra: Infrastructure): InfrastructureEndpoints {
  return {
    temporalAddress: infra.temporal.address,
    kafkaBootstrap: infra.kafka.bootstrap,
    rayDashboardUrl: infra.ray.dashboardUrl.href,
    rayServeUrl: infra.ray.serveUrl.href,
    rayAuthToken: infra.ray.authToken,
  };
}
