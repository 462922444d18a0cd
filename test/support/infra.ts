/**
 * What the global setup started for this test run (see global-setup.ts),
 * read in a test file with `inject("infra")` or {@link infra}.
 */
import { inject } from "vitest";
import type { InfrastructureEndpoints } from "../../local/services.js";

/** Addresses of the run's Temporal, Kafka and Ray (plain data: it crosses to the test workers). */
export interface InfraInfo {
  stateDir: string;
  temporal: { address: string; binary: string };
  kafka: { bootstrap: string; version: string };
  ray: { dashboardUrl: string; serveUrl: string; authToken: string };
}

declare module "vitest" {
  export interface ProvidedContext {
    infra: InfraInfo;
  }
}

/** The run's infrastructure. */
export function infra(): InfraInfo {
  return inject("infra");
}

/** The run's infrastructure as `startServices` takes it. */
export function infraEndpoints(): InfrastructureEndpoints {
  const { temporal, kafka, ray } = infra();
  return { temporalAddress: temporal.address, kafkaBootstrap: kafka.bootstrap, rayDashboardUrl: ray.dashboardUrl, rayServeUrl: ray.serveUrl, rayAuthToken: ray.authToken };
}
