/**
 * `npm start` keeps what it started running: the services started the way it
 * starts them (child processes from their entry points, on free loopback
 * ports, against the run's real Temporal, Kafka and Ray), one of them killed
 * with SIGKILL, restarted and healthy again; stopping restarts nothing.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { answersOk, startServices, type Services } from "../../local/services.js";
import { infraEndpoints } from "../support/infra.js";
import { waitFor } from "../support/wait-for.js";

let stateDir: string;
let services: Services | undefined;
/** What the supervisors reported, in order. */
const reported: string[] = [];

beforeAll(async () => {
  stateDir = await mkdtemp(path.join(tmpdir(), "somagent-supervision-"));
  services = await startServices(
    infraEndpoints(),
    {
      stateDir,
      restartOnExit: true,
      codecKeys: `supervision:${randomBytes(32).toString("base64")}`,
      taskQueue: `supervision-${randomBytes(4).toString("hex")}`,
      report: (line) => reported.push(line),
    },
  );
}, 240_000);

afterAll(async () => {
  await services?.stop();
  await rm(stateDir, { recursive: true, force: true });
}, 120_000);

describe("startServices supervision", () => {
  it("restarts a service killed with SIGKILL, logging its exit code and log file, until it answers its health check again", async () => {
    const { worker } = services!;
    const killed = worker.daemon;
    process.kill(killed.pid, "SIGKILL");
    expect(await killed.exited).toBe(137);

    await waitFor("the worker restarted", () => worker.restarts() === 1 && worker.up(), 120_000);
    expect(worker.daemon.pid).not.toBe(killed.pid);
    expect(await answersOk(new URL(worker.healthPath, worker.url))).toBe(true);
    expect(reported).toEqual([
      `worker exited with code 137; restarting in 1s (log ${path.join(stateDir, "worker.log")})`,
      `worker restarted and healthy (restart 1, log ${path.join(stateDir, "worker.log")})`,
    ]);
    expect(await killed.pids()).toEqual([]);
  }, 180_000);

  it("reports a service down from its exit until it is back", async () => {
    const { policyEngine } = services!;
    const killed = policyEngine.daemon;
    process.kill(killed.pid, "SIGKILL");
    await killed.exited;
    // Within the first second's backoff nothing has been started yet.
    expect(policyEngine.up()).toBe(false);
    await waitFor("the policy engine restarted", () => policyEngine.up(), 120_000);
    expect(policyEngine.restarts()).toBe(1);
    expect(await answersOk(new URL(policyEngine.healthPath, policyEngine.url))).toBe(true);
  }, 180_000);

  it("stops every service without restarting any", async () => {
    const all = [services!.api, services!.worker, services!.policyEngine, services!.identityService];
    const daemons = all.map((service) => service.daemon);
    const before = reported.length;
    await services!.stop();
    for (const daemon of daemons) expect(await daemon.pids()).toEqual([]);
    expect(reported.slice(before)).toEqual([]);
    expect(all.map((service) => service.restarts())).toEqual([0, 1, 1, 0]);
    services = undefined;
  }, 120_000);
});
