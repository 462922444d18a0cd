// The image's HEALTHCHECK: finds which role runs in this container (the entry
// point docker-entrypoint.sh started, whether it is PID 1 or under an init),
// reads that role's listen address through the same config module the role
// uses, and exits 0 only when its GET /health answers 200 within 4 s.
import { readdirSync, readFileSync } from "node:fs";
import {
  loadApiConfig,
  loadIdentityServiceConfig,
  loadPolicyEngineConfig,
  loadWorkerConfig,
} from "../dist/src/config.js";

const ROLES = {
  "dist/src/api/main.js": () => loadApiConfig(),
  "dist/src/worker/main.js": () => {
    const config = loadWorkerConfig();
    return { host: config.metricsHost, port: config.metricsPort };
  },
  "dist/src/companions/policy-engine/main.js": () => loadPolicyEngineConfig(),
  "dist/src/companions/identity-service/main.js": () => loadIdentityServiceConfig(),
};

function runningRole() {
  for (const pid of readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
    let args;
    try {
      args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    } catch {
      continue; // the process ended while we looked
    }
    const entry = args.find((arg) => arg in ROLES);
    if (entry !== undefined) return entry;
  }
  return undefined;
}

// A wildcard listen address is probed on loopback.
function probeHost(host) {
  if (host === "0.0.0.0" || host === "::" || host === "[::]") return "127.0.0.1";
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

const role = runningRole();
if (role === undefined) {
  console.error("healthcheck: no orchestrator process (dist/src/*/main.js) runs in this container");
  process.exit(1);
}
const { host, port } = ROLES[role]();
const url = `http://${probeHost(host)}:${port}/health`;
try {
  const answer = await fetch(url, { signal: AbortSignal.timeout(4_000) });
  if (answer.status !== 200) {
    console.error(`healthcheck: ${url} answered ${answer.status}`);
    process.exit(1);
  }
} catch (error) {
  console.error(`healthcheck: ${url}: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
