/**
 * The session worker: one Temporal connection, the payload codec, the session
 * workflow and its activities, the audit producer, and a side server (the
 * shared JSON service) with `/metrics` and `/health`. The entry point and
 * tests both start it here.
 */
import { NativeConnection, Worker } from "@temporalio/worker";
import { createActivities, type ActivityDeps } from "../activities/index.js";
import { createJsonService } from "../shared/http/json-service.js";
import type { Logger } from "../shared/logger.js";
import type { Registry } from "../shared/metrics.js";
import type { AuditProducer } from "../clients/audit-producer.js";
import type { RayServeDeployment } from "../clients/ray-serve-deployment.js";
import type { WorkerConfig } from "../config.js";
import type { SpanSink } from "../shared/telemetry.js";
import { createEncryptionCodec } from "../temporal/payload-codec.js";
import { createActivityMetricsInterceptor } from "./activity-metrics.js";
import { WORKFLOWS_PATH } from "./bundle.js";
import { workerTracingOptions } from "./tracing.js";

/**
 * What the caller wires in: the clients of `createWorkerDependencies`, each
 * checked here against what its activity declares, and where to log and measure.
 */
export interface SessionWorkerOptions {
  policy: ActivityDeps["policy"];
  identity: ActivityDeps["identity"];
  completions: ActivityDeps["completions"];
  /** Started before the worker polls and stopped after it. */
  audit: AuditProducer;
  /** Kept deployed from start, out of the request path: completions only wait for it. */
  slmDeployment: Pick<RayServeDeployment, "keepDeployed">;
  logger: Logger;
  /** What the side server's `/metrics` exposes, the registry the clients measure on; the entry point creates it. */
  registry: Registry;
  /**
   * Prebuilt workflow bundle (`WORKFLOW_BUNDLE_PATH` in production); unset, the workflow source is
   * bundled at start, so development and tests never run a stale bundle.
   */
  workflowBundlePath?: string;
  /** Where the workflow and activity spans go (telemetry's `spans`); unset, sessions are not traced. */
  spans?: SpanSink | undefined;
}

/** A started worker. */
export interface SessionWorker {
  /** Where `/metrics` and `/health` answer. */
  metricsUrl: URL;
  /** Settles when the worker has stopped; rejects when it failed. */
  done: Promise<void>;
  /** Stops polling, lets running activities finish, disconnects Kafka and Temporal. */
  stop(): Promise<void>;
}

/**
 * Connects to Temporal and Kafka and starts polling the session task queue.
 * Throws when Temporal or Kafka cannot be reached, or the workflow code fails to bundle.
 */
export async function createSessionWorker(config: WorkerConfig, options: SessionWorkerOptions): Promise<SessionWorker> {
  const { logger, audit } = options;
  await audit.start();
  const connection = await NativeConnection.connect({
    address: `${config.temporal.address.host}:${config.temporal.address.port}`,
  });
  const bundlePath = options.workflowBundlePath;
  const worker = await Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    ...(bundlePath !== undefined ? { workflowBundle: { codePath: bundlePath } } : { workflowsPath: WORKFLOWS_PATH }),
    activities: createActivities({
      policy: options.policy,
      identity: options.identity,
      completions: options.completions,
      audit,
      sessionTimeouts: config.sessionTimeouts,
    }),
    interceptors: { activity: [createActivityMetricsInterceptor(options.registry)] },
    // Refuses plaintext: a session whose input did not come through the API's codec never runs.
    dataConverter: { payloadCodecs: [createEncryptionCodec(config.temporal.codecKeys, { refusePlaintext: true })] },
    ...workerTracingOptions(options.spans, bundlePath !== undefined),
  });
  // On the deployment's own signal, retried with backoff and logged: a session never deploys, it waits for this.
  options.slmDeployment.keepDeployed();
  const sideServer = createJsonService({
    routes: [],
    registry: options.registry,
    healthy: () => worker.getState() === "RUNNING",
    logger,
  });
  const metricsUrl = await sideServer.listen(config.metricsPort, config.metricsHost);
  logger.info("worker started", { taskQueue: config.temporal.taskQueue, metrics: metricsUrl.href });
  const done = worker.run().finally(async () => {
    await audit.stop();
    await connection.close();
    await sideServer.close();
    logger.info("worker stopped");
  });
  return {
    metricsUrl,
    done,
    async stop() {
      if (worker.getState() === "RUNNING") worker.shutdown();
      await done;
    },
  };
}
