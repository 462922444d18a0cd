/**
 * The client tools `clients/install.sh` installs into the cache (grpcurl,
 * the Go protoc plugins, the Python venv). Versions are read from that script
 * so it stays their single source.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { cacheDir } from "./cache.js";
import { runCommand } from "./processes.js";
import { step } from "./progress.js";

const repoRoot = path.resolve(import.meta.dirname, "..");
const installer = path.join(repoRoot, "clients", "install.sh");

/** The version `clients/install.sh` pins in `<name>=<version>`; throws when it pins none. */
export function clientToolVersion(name: string): string {
  const match = new RegExp(`^${name}=(\\S+)$`, "m").exec(readFileSync(installer, "utf8"));
  if (!match?.[1]) throw new Error(`clients/install.sh defines no ${name}`);
  return match[1];
}

/** The cached grpcurl binary's path (it may not be installed yet). */
export function grpcurlPath(): string {
  return path.join(cacheDir(), `grpcurl-${clientToolVersion("GRPCURL_VERSION")}`, "bin", "grpcurl");
}

/** Returns grpcurl's path, running `clients/install.sh` first when it is not installed (first run only). */
export async function installGrpcurl(): Promise<string> {
  const binary = grpcurlPath();
  if (existsSync(path.join(binary, "..", "..", ".done"))) return binary;
  await step("installing the client tools with clients/install.sh (first run only)", () =>
    runCommand(installer, [], { logFile: path.join(cacheDir(), "client-tools-install.log") }),
  );
  return binary;
}
