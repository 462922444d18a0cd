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
 * `/v1/policies/{tenant}` (both methods: the rules tell a prompt writer what
 * to avoid) is the admin API: it needs `Authorization: Bearer <admin token>`,
 * and without a configured token it is off (403 `admin_api_disabled`).
 * At most `maxTenants` rule sets are held; a PUT that would add one more is
 * refused (429 `tenant_limit_reached`).
 */
import { randomUUID } from "node:crypto";
import { rename, stat, writeFile } from "node:fs/promises";
import { Histogram, type Registry } from "prom-client";
import { bearerToken, secretsEqual } from "../../shared/http/credentials.js";
import { FieldError, HttpError } from "../../shared/http/errors.js";
import { createJsonService, type GuardRequest, type JsonService } from "../../shared/http/json-service.js";
import type { Tracer } from "@opentelemetry/api";
import { sessionLogFields } from "../../shared/http/session-headers.js";
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
  /** The bearer token of the admin API; undefined turns the admin API off. */
  adminToken: string | undefined;
  /** Most tenant rule sets held, `default` included; the rules file may not hold more. */
  maxTenants: number;
  /** Host names the engine answers to (besides IP literals). */
  allowedHosts: readonly string[];
  /** Where the engine's metrics register and what `/metrics` exposes; the entry point creates it. */
  registry: Registry;
  logger: Logger;
  /** Traces each request (see ../tracing.ts); unset, nothing is traced. */
  tracer?: Tracer | undefined;
}

/** Realm of the admin API's `WWW-Authenticate` challenge. */
const ADMIN_REALM = "policy-engine-admin";

const ID = { maxLength: 256 } as const;

/**
 * Builds the policy engine. Throws at construction when the rules file cannot
 * be read or is invalid (the message names the file and the field), or holds
 * more than `maxTenants` tenants.
 */
export function createPolicyEngineServer(options: PolicyEngineServerOptions): JsonService {
  const { rulesFile, registry, adminToken, maxTenants, logger } = options;
  const loaded = loadDataFile(rulesFile, { name: "default-policies.json", value: shippedPolicies }, parsePolicyFile);
  const tenants = loaded.tenants;
  if (tenants.size > maxTenants) {
    throw new Error(`${rulesFile ?? "default-policies.json"}: holds ${tenants.size} tenants, more than the limit of ${maxTenants} (POLICY_ENGINE_MAX_TENANTS)`);
  }

  /** The admin API's guard: off without a token; otherwise the bearer token, compared in constant time. */
  function authenticateAdmin({ headers }: GuardRequest): void {
    if (adminToken === undefined) {
      throw new HttpError(403, "admin_api_disabled", "the admin API is off: set POLICY_ENGINE_ADMIN_TOKEN to turn it on, and send it as Authorization: Bearer <token>");
    }
    const given = bearerToken(headers.authorization);
    if (given === undefined) {
      throw new HttpError(401, "unauthenticated", "the admin API needs Authorization: Bearer <admin token>", {
        "www-authenticate": `Bearer realm="${ADMIN_REALM}"`,
      });
    }
    if (!secretsEqual(given, adminToken)) {
      throw new HttpError(401, "unauthenticated", "the admin token is wrong", {
        "www-authenticate": `Bearer realm="${ADMIN_REALM}", error="invalid_token"`,
      });
    }
  }
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

  /**
   * Writes the file, then swaps the rules in, one PUT at a time, so the file
   * and memory never disagree. Throws {@link HttpError} 429 when `tenant` is
   * new and the engine already holds `maxTenants` rule sets.
   */
  function replace(tenant: string, compiled: CompiledPolicy): Promise<void> {
    const next = writes.then(async () => {
      // Checked in the queue, so two PUTs of new tenants cannot both take the last place.
      if (!tenants.has(tenant) && tenants.size >= maxTenants) {
        throw new HttpError(429, "tenant_limit_reached", `the engine holds ${tenants.size} tenant rule sets, its limit (POLICY_ENGINE_MAX_TENANTS): tenant ${JSON.stringify(tenant)} cannot be added; replace an existing tenant's rules instead`);
      }
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
    tracer: options.tracer,
    registry,
    metricPrefix: "somagent_policy_engine",
    logger,
    allowedHosts: options.allowedHosts,
    routes: [
      {
        method: "POST",
        path: "/v1/evaluate",
        handle({ body, headers }) {
          const request = expectObject(body, "body");
          const sessionId = expectString(request.session_id, "session_id", ID);
          const tenant = expectString(request.tenant, "tenant", ID);
          const user = expectString(request.user, "user", ID);
          expectString(request.role, "role", ID);
          // The body limit bounds the prompt.
          const prompt = expectString(request.prompt, "prompt", { maxLength: Infinity, allowEmpty: true });
          expectObject(request.metadata, "metadata");
          const stopTimer = evaluationDuration.startTimer();
          const { compiled } = active(tenant);
          const verdict = evaluatePrompt(compiled, prompt);
          stopTimer({ outcome: verdict.allowed ? "allowed" : "denied" });
          if (!verdict.allowed) {
            // A denial is the engine doing its job: one line, without the prompt (it may hold what the rules caught).
            logger.info("prompt denied", {
              session_id: sessionId,
              ...sessionLogFields(headers),
              tenant,
              user,
              score: verdict.score,
              reason: verdict.reasons[0],
              rules: verdict.violations.map((violation) => violation.name),
              constitution_hash: compiled.constitutionHash,
            });
          }
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
        guard: authenticateAdmin,
        handle: ({ params }) => ({ json: describe(tenantParam(params)) }),
      },
      {
        method: "PUT",
        path: "/v1/policies/:tenant",
        guard: authenticateAdmin,
        async handle({ params, body }) {
          const tenant = tenantParam(params);
          await replace(tenant, parseTenantPolicy(body));
          return { json: describe(tenant) };
        },
      },
    ],
  });
}
