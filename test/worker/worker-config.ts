/**
 * A test worker's configuration, read the way the entry point reads it: from
 * environment variables naming the run's real servers.
 */
import { loadWorkerConfig, type WorkerConfig } from "../../src/config.js";
import { TEST_CLIENT } from "../companions/start-companions.js";
import { infra } from "../support/infra.js";
import { fixtureCodecKey } from "./histories.js";

/** Where the test's worker finds what it talks to. */
export interface TestWorkerTargets {
  temporalAddress: string;
  taskQueue: string;
  /** Base URLs of the companion servers the test started. */
  policyEngine: URL;
  identityService: URL;
  /** The test file's own topic on the run's Kafka. */
  auditTopic: string;
  ray: { dashboardUrl: string | URL; serveUrl: string | URL; authToken: string };
  /** `PAYLOAD_CODEC_KEYS` when not the fixtures' key (e.g. an API fixture's own). */
  codecKeys?: string;
}

/** The worker configuration for `targets`, by default with the fixtures' codec key (so histories can be recorded and replayed). */
export function testWorkerConfig(targets: TestWorkerTargets): WorkerConfig {
  return loadWorkerConfig(testWorkerEnv(targets));
}

/** The environment variables of {@link testWorkerConfig}, for a worker process of the test's own. */
export function testWorkerEnv(targets: TestWorkerTargets): Record<string, string> {
  return {
    TEMPORAL_TARGET_HOST: targets.temporalAddress,
    TEMPORAL_TASK_QUEUE: targets.taskQueue,
    PAYLOAD_CODEC_KEYS: targets.codecKeys ?? `${fixtureCodecKey.id}:${fixtureCodecKey.key}`,
    POLICY_ENGINE_URL: new URL("/v1/evaluate", targets.policyEngine).href,
    IDENTITY_SERVICE_CLIENT_ID: TEST_CLIENT.id,
    IDENTITY_SERVICE_CLIENT_SECRET: TEST_CLIENT.secret,
    IDENTITY_SERVICE_URL: new URL("/v1/tokens/issue", targets.identityService).href,
    KAFKA_BOOTSTRAP_SERVERS: infra().kafka.bootstrap,
    KAFKA_AUDIT_TOPIC: targets.auditTopic,
    KAFKA_AUDIT_TOPIC_PARTITIONS: "1",
    RAY_DASHBOARD_URL: new URL(targets.ray.dashboardUrl).href,
    RAY_SERVE_URL: new URL(targets.ray.serveUrl).href,
    RAY_AUTH_TOKEN: targets.ray.authToken,
    WORKER_METRICS_HOST: "127.0.0.1",
    WORKER_METRICS_PORT: "0",
  };
}
