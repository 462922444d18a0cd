import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RayConfig } from "../../src/config.js";
import { PermanentCallError, TransientCallError } from "../../src/shared/call-errors.js";
import { createMetricsRegistry } from "../../src/shared/metrics.js";
import { createRayServeCompletions, type RayServeCompletions, type SlmCompletionRequest } from "../../src/clients/ray-serve-completions.js";
import type { CompletionJson } from "../../gen/somagent/orchestrator/v1/session_pb.js";
import { createLogger } from "../../src/shared/logger.js";
import {
  createRayServeDeployment,
  slmApplicationConfig,
  slmApplicationName,
  type RayServeDeployment,
} from "../../src/clients/ray-serve-deployment.js";
import { freePort, startRayCluster, type RayTestCluster } from "../ray/ray-cluster.js";
import { waitFor } from "../support/wait-for.js";

let cluster: RayTestCluster;
const deployments: RayServeDeployment[] = [];
const registry = createMetricsRegistry({ processMetrics: false });

function rayConfig(overrides: Partial<RayConfig> = {}): RayConfig {
  return {
    address: cluster.dashboardUrl.href,
    namespace: "somagent",
    dashboardUrl: cluster.dashboardUrl,
    serveUrl: cluster.serveUrl,
    authToken: cluster.authToken,
    timeouts: { dashboardMs: 10_000, completionMs: 30_000, deployMs: 120_000 },
    slmProvider: { url: undefined, apiKey: undefined, model: undefined, timeoutMs: 30_000 },
    ...overrides,
  };
}

/** The two Ray clients as the worker wires them (the completions wait for the deployment), and the deployment's log lines. */
function client(overrides: Partial<RayConfig> = {}): { deployment: RayServeDeployment; completions: RayServeCompletions; log: string[] } {
  const config = rayConfig(overrides);
  const log: string[] = [];
  const deployment = createRayServeDeployment(config, { registry, logger: createLogger("ray-serve-test", (line) => log.push(line)), pollIntervalMs: 200 });
  deployments.push(deployment);
  return { deployment, completions: createRayServeCompletions(config, { deployment, registry }), log };
}

/** Declares the cluster's applications without `name`, as another team's PUT that forgot ours would. */
async function removeApplication(name: string): Promise<void> {
  const current = await applications();
  const kept = Object.entries(current)
    .filter(([appName]) => appName !== name)
    .map(([, app]) => (app as AppDetails & { deployed_app_config: unknown }).deployed_app_config);
  // undici's request, not fetch: the dashboard refuses a PUT carrying fetch's Sec-Fetch-* headers (405).
  const response = await request(new URL("/api/serve/applications/", cluster.dashboardUrl), {
    method: "PUT",
    headers: { authorization: `Bearer ${cluster.authToken}`, "content-type": "application/json" },
    body: JSON.stringify({ applications: kept }),
  });
  await response.body.dump();
  expect(response.statusCode).toBe(200);
}

/** The first completion that succeeds within 120 s (those before it fail while the application is redeployed). */
async function completionOnceServing(completions: RayServeCompletions, request: SlmCompletionRequest): Promise<CompletionJson> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      return await completions.complete(request);
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}

interface AppDetails {
  status: string;
  last_deployed_time_s: number;
  deployments: Record<string, { replicas: { replica_id: string }[] }>;
}

/** What the dashboard says about every application, read with the cluster's token. */
async function applications(): Promise<Record<string, AppDetails>> {
  // undici's request, not fetch: the dashboard redacts env vars for callers that send fetch's Sec-Fetch-* headers.
  const response = await request(new URL("/api/serve/applications/", cluster.dashboardUrl), {
    headers: { authorization: `Bearer ${cluster.authToken}` },
  });
  return ((await response.body.json()) as { applications: Record<string, AppDetails> }).applications;
}

function replicaIds(app: AppDetails | undefined): string[] {
  return Object.values(app?.deployments ?? {}).flatMap((d) => d.replicas.map((r) => r.replica_id));
}

beforeAll(async () => {
  cluster = await startRayCluster();
}, 120_000);

afterAll(async () => {
  await Promise.all(deployments.map((d) => d.close()));
  await cluster?.stop();
  expect(await cluster.pids()).toEqual([]);
}, 60_000);

describe("slmApplicationName", () => {
  it("derives the application name and route prefix from RAY_NAMESPACE", () => {
    expect(slmApplicationName("somagent")).toEqual({ name: "somagent-slm", routePrefix: "/somagent/slm" });
  });
});

describe("slmApplicationConfig", () => {
  const base = (): RayConfig => ({
    address: "auto",
    namespace: "somagent",
    dashboardUrl: new URL("http://127.0.0.1:8265"),
    serveUrl: new URL("http://127.0.0.1:8000"),
    authToken: undefined,
    timeouts: { dashboardMs: 10_000, completionMs: 60_000, deployMs: 120_000 },
    slmProvider: { url: undefined, apiKey: undefined, model: undefined, timeoutMs: 30_000 },
  });

  it("declares the builtin provider when no upstream is configured", () => {
    expect(slmApplicationConfig(base())).toMatchObject({
      name: "somagent-slm",
      route_prefix: "/somagent/slm",
      import_path: "somagent_slm.app:build",
      args: { request_timeout_s: 30 },
    });
    expect(slmApplicationConfig(base()).args).not.toHaveProperty("provider_url");
  });

  it("passes the upstream in args and its key only in runtime_env, and fingerprints both", () => {
    const withUpstream = base();
    withUpstream.slmProvider = { url: new URL("https://llm.internal/v1"), apiKey: "key-1", model: "small", timeoutMs: 5_000 };
    const app = slmApplicationConfig(withUpstream);
    expect(app.args).toMatchObject({ provider_url: "https://llm.internal/v1", provider_model: "small", request_timeout_s: 5 });
    expect(JSON.stringify(app.args)).not.toContain("key-1");
    expect(app.runtime_env).toEqual({ env_vars: { SLM_PROVIDER_API_KEY: "key-1" } });

    const otherKey = base();
    otherKey.slmProvider = { ...withUpstream.slmProvider, apiKey: "key-2" };
    const fingerprints = [base(), withUpstream, otherKey].map((c) => slmApplicationConfig(c).args?.config_fingerprint);
    expect(new Set(fingerprints).size).toBe(3);
    expect(slmApplicationConfig(base()).args?.config_fingerprint).toBe(fingerprints[0]);
  });
});

describe("createRayServeDeployment and createRayServeCompletions against a real Ray 2.60 cluster", () => {
  it("deploys the application from nothing and waits until it is RUNNING, keeping another team's application", async () => {
    const other = client({ namespace: "other-team" });
    await other.deployment.ensureDeployed();
    const otherReplicas = replicaIds((await applications())["other-team-slm"]);
    expect(otherReplicas).toHaveLength(1);

    const ours = client();
    expect((await ours.deployment.status()).status).toBe("NOT_DEPLOYED");
    await ours.deployment.ensureDeployed();

    const status = await ours.deployment.status();
    expect(status).toMatchObject({ name: "somagent-slm", routePrefix: "/somagent/slm", status: "RUNNING", upToDate: true });
    // Declared again in the same PUT, but neither removed nor restarted.
    const apps = await applications();
    expect(apps["other-team-slm"]!.status).toBe("RUNNING");
    expect(replicaIds(apps["other-team-slm"])).toEqual(otherReplicas);
  }, 180_000);

  it("does not declare again when the deployed application is up to date", async () => {
    const before = (await applications())["somagent-slm"]!.last_deployed_time_s;
    await client().deployment.ensureDeployed();
    expect((await applications())["somagent-slm"]!.last_deployed_time_s).toBe(before);
  }, 60_000);

  it("round-trips a completion from the builtin deterministic provider, identical for identical input", async () => {
    const ours = client();
    const request = { prompt: "kick off a demo", model: "somagent-demo", sessionId: "sess-local" };
    const first = await ours.completions.complete(request);
    const second = await ours.completions.complete({ ...request, sessionId: "sess-other" });
    const otherPrompt = await ours.completions.complete({ ...request, prompt: "kick off another demo" });

    expect(first.provider).toBe("builtin-deterministic");
    expect(first.model).toBe("somagent-demo");
    expect(first.promptTokens).toBe(4);
    expect(first.completionTokens).toBe(first.text!.split(/\s+/).length);
    expect(second).toEqual(first);
    expect(otherPrompt.text).not.toBe(first.text);
  }, 60_000);

  it("caps the completion at max_tokens", async () => {
    const result = await client().completions.complete({ prompt: "kick off a demo", model: "somagent-demo", sessionId: "s", maxTokens: 2 });
    expect(result.completionTokens).toBe(2);
    expect(result.text!.split(" ")).toHaveLength(2);
  }, 60_000);

  it("rejects an invalid request with a PermanentCallError naming the field", async () => {
    const ours = client();
    await expect(ours.completions.complete({ prompt: "  ", model: "somagent-demo", sessionId: "s" })).rejects.toThrow(PermanentCallError);
    await expect(ours.completions.complete({ prompt: "  ", model: "somagent-demo", sessionId: "s" })).rejects.toThrow(/prompt/);
    await expect(ours.completions.complete({ prompt: "hi", model: "somagent-demo", sessionId: "s", maxTokens: 0 })).rejects.toThrow(/max_tokens/);
    await expect(ours.completions.complete({ prompt: "hi", model: "bad model", sessionId: "s" })).rejects.toThrow(/model/);
  }, 60_000);

  it("is refused by the dashboard without the token, so token authentication is on", async () => {
    const error = await client({ authToken: undefined }).deployment.status().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PermanentCallError);
    expect((error as PermanentCallError).status).toBe(401);
    const wrong = await client({ authToken: "0".repeat(64) }).deployment.status().catch((e: unknown) => e);
    expect((wrong as PermanentCallError).status).toBe(403);
  }, 60_000);

  it("throws a TransientCallError naming Ray when the dashboard is unreachable", async () => {
    const closed = new URL(`http://127.0.0.1:${await freePort()}`);
    const unreachable = client({ dashboardUrl: closed, serveUrl: closed });
    const error = await unreachable.completions.complete({ prompt: "hi", model: "m", sessionId: "s" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransientCallError);
    expect((error as Error).message).toMatch(/Ray dashboard is unreachable/);
    // Its keeper would try again with backoff until closed (and would re-declare the application it wants).
    await unreachable.deployment.close();
  }, 60_000);

  it("throws a TransientCallError naming Ray Serve when the Serve proxy is unreachable", async () => {
    const closed = new URL(`http://127.0.0.1:${await freePort()}`);
    const unreachable = client({ serveUrl: closed });
    const error = await unreachable.completions.complete({ prompt: "hi", model: "m", sessionId: "s" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransientCallError);
    expect((error as Error).message).toMatch(/Ray Serve is unreachable/);
    // Its keeper would try again with backoff until closed (and would re-declare the application it wants).
    await unreachable.deployment.close();
  }, 60_000);

  it("redeploys when the provider configuration changes, and reports an unreachable upstream as transient", async () => {
    const upstream = new URL(`http://127.0.0.1:${await freePort()}`);
    const before = (await applications())["somagent-slm"]!.last_deployed_time_s;
    const ours = client({ slmProvider: { url: upstream, apiKey: "test-key", model: undefined, timeoutMs: 5_000 } });
    expect((await ours.deployment.status()).upToDate).toBe(false);

    // The redeployment is the worker's, out of any completion's limit: the call is made once it serves.
    await ours.deployment.whenServing();
    const error = await ours.completions.complete({ prompt: "hi", model: "somagent-demo", sessionId: "s" }).catch((e: unknown) => e);
    expect((await applications())["somagent-slm"]!.last_deployed_time_s).toBeGreaterThan(before);
    expect(error).toBeInstanceOf(TransientCallError);
    expect((error as TransientCallError).status).toBe(502);
    expect((error as Error).message).toMatch(new RegExp(`upstream 127\\.0\\.0\\.1:${upstream.port} unreachable`));
    expect((await applications())["other-team-slm"]!.status).toBe("RUNNING");
  }, 180_000);

  it("keeps a deployment going for the other callers when one caller waiting for it is cancelled", async () => {
    const { deployment, completions } = client({ namespace: "third-team" });
    const request = { prompt: "kick off a demo", model: "somagent-demo", sessionId: "sess-cancel" };
    const activity = new AbortController();
    const cancelled = completions.complete(request, activity.signal).catch((e: unknown) => e);
    const waiting = completions.complete(request);
    // Cancel the first caller once the application is declared, while its replica is still starting.
    const declaredBy = Date.now() + 30_000;
    while (!(await applications())["third-team-slm"] && Date.now() < declaredBy) await new Promise((resolve) => setTimeout(resolve, 100));
    expect((await deployment.status()).status).not.toBe("RUNNING");
    const reason = new Error("activity cancelled");
    activity.abort(reason);

    expect(await cancelled).toBe(reason);
    expect((await waiting).provider).toBe("builtin-deterministic");
    expect((await deployment.status()).status).toBe("RUNNING");
  }, 180_000);

  it("completes a call while its caller cancels another in-flight completion, and leaves the application serving", async () => {
    const { deployment, completions, log } = client({ namespace: "third-team" });
    const request = { prompt: "kick off a demo", model: "somagent-demo", sessionId: "sess-in-flight" };
    await deployment.whenServing();
    const calls = Array.from({ length: 6 }, () => new AbortController());
    const pending = calls.map((call, i) => completions.complete({ ...request, sessionId: `sess-${i}` }, call.signal).catch((e: unknown) => e));
    const reason = new Error("activity cancelled");
    for (const call of calls.filter((_, i) => i % 2 === 0)) call.abort(reason);

    const outcomes = await Promise.all(pending);
    for (const [i, outcome] of outcomes.entries()) {
      if (i % 2 === 0) expect(outcome === reason || (outcome as CompletionJson).provider === "builtin-deterministic").toBe(true);
      else expect((outcome as CompletionJson).provider).toBe("builtin-deterministic");
    }
    // A caller's cancellation is not Ray's failure: nothing was redeployed.
    expect(log.filter((line) => line.includes("stopped answering"))).toEqual([]);
    expect((await completions.complete(request)).provider).toBe("builtin-deterministic");
  }, 60_000);

  it("redeploys, on its own, the application another PUT removed, once a completion finds its route gone", async () => {
    const { deployment, completions, log } = client({ namespace: "fourth-team" });
    const request = { prompt: "kick off a demo", model: "somagent-demo", sessionId: "sess-removed" };
    deployment.keepDeployed();
    await deployment.whenServing();
    await removeApplication("fourth-team-slm");
    await waitFor("the application deleted", async () => (await applications())["fourth-team-slm"] === undefined, 60_000);

    // The proxy drops the route a moment after the dashboard: the first call that finds it gone fails transiently
    // (a Temporal retry) and tells the keeper, which redeploys.
    let routeGone: unknown;
    await waitFor("a completion finding the route gone", async () => {
      routeGone = await completions.complete(request).then(() => undefined, (error: unknown) => error);
      return routeGone !== undefined;
    }, 60_000);
    expect(routeGone).toBeInstanceOf(TransientCallError);
    expect((await completionOnceServing(completions, request)).provider).toBe("builtin-deterministic");
    expect((await applications())["fourth-team-slm"]!.status).toBe("RUNNING");
    const messages = log.map((line) => (JSON.parse(line) as { message: string }).message);
    expect(messages).toContain("Ray Serve application stopped answering; ensuring it again");
    expect(messages.filter((m) => m === "Ray Serve application serving")).toHaveLength(2);
    const metrics = await registry.getSingleMetricAsString("somagent_ray_serve_deployments_total");
    expect(metrics).toContain('somagent_ray_serve_deployments_total{application="fourth-team-slm",outcome="serving"} 2');
  }, 180_000);
});
