/**
 * The policy engine companion: weighted regular-expression rules per tenant,
 * evaluated against a session's prompt.
 *
 * - `POST /v1/evaluate` `{session_id, tenant, user, role, prompt, metadata}` →
 *   `{allowed, score, violations, reasons, constitution_hash, evaluated_at}`.
 * - `GET /v1/policies/{tenant}` → `{tenant, source, constitution_hash, policy}`,
 *   where `source` is `tenant` or `default` (the tenant has no rules of its own).
 * - `PUT /v1/policies/{tenant}` with `{threshold, rules}` replaces the tenant's
 *   rules and answers like GET.
 *
 * PUT has no authentication: bind the engine to loopback or a private network.
 */
import { randomUUID } from "node:crypto";
import { rename, stat, writeFile } from "node:fs/promises";
import { Histogram, type Registry } from "prom-client";
import { FieldError } from "../../shared/http/errors.js";
import { createJsonService, type JsonService } from "../../shared/http/json-service.js";
import type { Logger } from "../../shared/logger.js";
import { expectObject, expectString, loadDataFile } from "../request-fields.js";
import shippedPolicies from "./default-policies.json" with { type: "json" };
import {
  DEFAULT_TENANT,
  TENANT_PATTERN,
  evaluatePrompt,
  parsePolicyFile,
  parseTenantPolicy,
  type CompiledPolicy,
  type PolicyFile,
} from "./policies.js";

/** What {@link createPolicyEngineServer} needs. */
export interface PolicyEngineServerOptions {
  /**
   * A rules file to load instead of the shipped `default-policies.json`. When
   * given, every accepted PUT is written back to it (atomically: a temporary
   * file renamed over it), so edits survive a restart; without it, edits live
   * in memory only and the shipped file is never modified.
   */
  rulesFile?: string;
  /** Where the engine's metrics register and what `/metrics` exposes; the entry point creates it. */
  registry: Registry;
  logger: Logger;
}

const ID = { maxLength: 256 } as const;

/**
 * Builds the policy engine. Throws at construction when the rules file cannot
 * be read or is invalid; the message names the file and the field.
 */
export function createPolicyEngineServer(options: PolicyEngineServerOptions): JsonService {
  const { rulesFile, registry } = options;
  const loaded = loadDataFile(rulesFile, { name: "default-policies.json", value: shippedPolicies }, parsePolicyFile);
  const tenants = loaded.tenants;
  let writes: Promise<void> = Promise.resolve();

  const evaluationDuration = new Histogram({
    name: "somagent_policy_engine_evaluation_duration_seconds",
    help: "Time to evaluate one prompt against its tenant's rules, by outcome (allowed, denied).",
    labelNames: ["outcome"] as const,
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
    registers: [registry],
  });

  function active(tenant: string): { source: "tenant" | "default"; compiled: CompiledPolicy } {
    const own = tenants.get(tenant);
    if (own) return { source: "tenant", compiled: own };
    // parsePolicyFile guarantees the default tenant.
    return { source: "default", compiled: tenants.get(DEFAULT_TENANT) as CompiledPolicy };
  }

  function describe(tenant: string) {
    const { source, compiled } = active(tenant);
    return { tenant, source, constitution_hash: compiled.constitutionHash, policy: compiled.policy };
  }

  function tenantParam(params: Record<string, string>): string {
    const tenant = params.tenant ?? "";
    if (!TENANT_PATTERN.test(tenant)) throw new FieldError("tenant", "must be 1-128 letters, digits, '.', '_' or '-'");
    return tenant;
  }

  /** Writes the file, then swaps the rules in, one PUT at a time, so the file and memory never disagree. */
  function replace(tenant: string, compiled: CompiledPolicy): Promise<void> {
    const next = writes.then(async () => {
      if (rulesFile !== undefined) {
        const file: PolicyFile = { description: loaded.description, tenants: {} };
        for (const [name, policy] of new Map([...tenants, [tenant, compiled]])) file.tenants[name] = policy.policy;
        const temporary = `${rulesFile}.${randomUUID()}.tmp`;
        const { mode } = await stat(rulesFile);
        await writeFile(temporary, `${JSON.stringify(file, null, 2)}\n`, { mode: mode & 0o777 });
        await rename(temporary, rulesFile);
      }
      tenants.set(tenant, compiled);
    });
    writes = next.catch(() => undefined);
    return next;
  }

  return createJsonService({
    registry,
    metricPrefix: "somagent_policy_engine",
    logger: options.logger,
    routes: [
      {
        method: "POST",
        path: "/v1/evaluate",
        handle({ body }) {
          const request = expectObject(body, "body");
          expectString(request.session_id, "session_id", ID);
          const tenant = expectString(request.tenant, "tenant", ID);
          expectString(request.user, "user", ID);
          expectString(request.role, "role", ID);
          // The body limit bounds the prompt.
          const prompt = expectString(request.prompt, "prompt", { maxLength: Infinity, allowEmpty: true });
          expectObject(request.metadata, "metadata");
          const stopTimer = evaluationDuration.startTimer();
          const { compiled } = active(tenant);
          const verdict = evaluatePrompt(compiled, prompt);
          stopTimer({ outcome: verdict.allowed ? "allowed" : "denied" });
          return {
            json: {
              allowed: verdict.allowed,
              score: verdict.score,
              violations: verdict.violations,
              reasons: verdict.reasons,
              constitution_hash: compiled.constitutionHash,
              evaluated_at: new Date().toISOString(),
            },
          };
        },
      },
      {
        method: "GET",
        path: "/v1/policies/:tenant",
        handle: ({ params }) => ({ json: describe(tenantParam(params)) }),
      },
      {
        method: "PUT",
        path: "/v1/policies/:tenant",
        async handle({ params, body }) {
          const tenant = tenantParam(params);
          await replace(tenant, parseTenantPolicy(body));
          return { json: describe(tenant) };
        },
      },
    ],
  });
}
