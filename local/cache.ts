/**
 * The install cache of the local infrastructure, outside the repository:
 * `$SOMAGENT_CACHE_DIR` or `~/.cache/somagent-orchestrator`, one directory per
 * tool and version (`temporal-cli-v1.5.1`, `kafka-4.1.1`, `ray-2.60.0`), so a
 * version bump installs beside the old one and a warm cache costs nothing.
 */
import { existsSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import path from "node:path";
import { step } from "./progress.js";

/** Root of the install cache. */
export function cacheDir(): string {
  return process.env.SOMAGENT_CACHE_DIR ?? path.join(homedir(), ".cache", "somagent-orchestrator");
}

/** Marker written last by an install: a directory without it is a half-install and is redone. */
const DONE_MARKER = ".installed";

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Holds `<dir>.lock` while `work` runs, so two runs on one machine never
 * install into the same directory at once. A lock whose owner died is taken over.
 */
async function withInstallLock<T>(dir: string, work: () => Promise<T>): Promise<T> {
  const lock = `${dir}.lock`;
  for (;;) {
    try {
      await mkdir(lock);
      await writeFile(path.join(lock, "pid"), String(process.pid));
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const owner = Number(await readFile(path.join(lock, "pid"), "utf8").catch(() => "0"));
      if (owner > 0 && !isAlive(owner)) {
        await rm(lock, { recursive: true, force: true });
        continue;
      }
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
  }
  try {
    return await work();
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

/**
 * Returns `<cache>/<name>`, installing it first with `install(dir)` unless a
 * finished install is there. The install runs in place (virtual environments
 * cannot move) into an emptied directory and is marked finished last.
 */
export async function installOnce(name: string, label: string, install: (dir: string) => Promise<void>): Promise<string> {
  const dir = path.join(cacheDir(), name);
  if (existsSync(path.join(dir, DONE_MARKER))) return dir;
  await mkdir(cacheDir(), { recursive: true });
  return withInstallLock(dir, async () => {
    if (existsSync(path.join(dir, DONE_MARKER))) return dir;
    await step(`${label} (first run only) into ${dir}`, async () => {
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { recursive: true });
      await install(dir);
      await writeFile(path.join(dir, DONE_MARKER), new Date().toISOString());
    });
    return dir;
  });
}
