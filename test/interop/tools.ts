/**
 * Where the client tools installed by `clients/install.sh` live. Versions are
 * read from that script so it stays their single source.
 */
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";

/** Repository root. */
export const repoRoot = resolve(import.meta.dirname, "..", "..");

const cache = process.env.SOMAGENT_CACHE_DIR ?? join(homedir(), ".cache", "somagent-orchestrator");
const installer = readFileSync(join(repoRoot, "clients", "install.sh"), "utf8");

function version(name: string): string {
  const match = new RegExp(`^${name}=(\\S+)$`, "m").exec(installer);
  if (!match?.[1]) throw new Error(`clients/install.sh defines no ${name}`);
  return match[1];
}

/** Absolute paths of the client tools; run `clients/install.sh chromium` first. */
export const tools = {
  grpcurl: join(cache, `grpcurl-${version("GRPCURL_VERSION")}`, "bin", "grpcurl"),
  python: join(cache, `python-grpcio-tools-${version("GRPCIO_TOOLS_VERSION")}`, "bin", "python"),
  chromium: "/usr/bin/chromium",
  curl: "curl",
  go: "go",
};
