/**
 * The one place that turns the worker's configuration into the clients its
 * activities use: the policy engine, the identity service, Ray Serve
 * (deployment and completions) and the Kafka audit producer. The entry point
 * and the tests wire the worker through it, so they run the same clients.
 */
import { createAuditProducer, type AuditProducer } from "../clients/audit-producer.js";
import { createIdentityServiceClient, type IdentityServiceClient } from "../clients/identity-service.js";
import { createPolicyEngineClient, type PolicyEngineClient } from "../clients/policy-engine.js";
import { createRayServeCompletions, type RayServeCompletions } from "../clients/ray-serve-completions.js";
import { createRayServeDeployment, type RayServeDeployment } from "../clients/ray-serve-deployment.js";
import type { WorkerConfig } from "../config.js";
import type { Logger } from "../shared/logger.js";
import type { Registry } from "../shared/metrics.js";

/** The worker's clients, ready to be wired into `createSessionWorker`. */
export interface WorkerDependencies {
  policy: PolicyEngineClient;
  identity: IdentityServiceClient;
  completions: RayServeCompletions;
  /** Started and stopped by the worker. */
  audit: AuditProducer;
  /** The Serve application the completions are sent to; the worker keeps it deployed from start. */
  slmDeployment: RayServeDeployment;
  /** Closes what the clients hold open (the Ray dashboard's connection pool, a deployment in progress). */
  close(): Promise<void>;
}

/** Builds every client from `config`, measuring on `registry` and logging to `logger`; connects nothing yet. */
export function createWorkerDependencies(config: WorkerConfig, registry: Registry, logger: Logger): WorkerDependencies {
  const slmDeployment = createRayServeDeployment(config.ray, { registry, logger });
  return {
    policy: createPolicyEngineClient({ url: config.policyEngineUrl, timeoutMs: config.policyEngineTimeoutMs, registry }),
    identity: createIdentityServiceClient({
      url: config.identityServiceUrl,
      timeoutMs: config.identityServiceTimeoutMs,
      credentials: config.identityClient,
      registry,
    }),
    completions: createRayServeCompletions(config.ray, { deployment: slmDeployment, registry }),
    audit: createAuditProducer(config.kafka, logger, registry),
    slmDeployment,
    close: () => slmDeployment.close(),
  };
}
