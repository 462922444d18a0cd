/**
 * The install cache: a finished install is reused, a half-install (one that
 * failed or was cut off before its marker was written) is redone from empty.
 */
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cacheDir, installOnce } from "../../local/cache.js";

let root: string;
const previous = process.env.SOMAGENT_CACHE_DIR;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "somagent-cache-"));
  process.env.SOMAGENT_CACHE_DIR = root;
  process.env.SOMAGENT_QUIET = "1";
});
afterAll(async () => {
  if (previous === undefined) delete process.env.SOMAGENT_CACHE_DIR;
  else process.env.SOMAGENT_CACHE_DIR = previous;
  delete process.env.SOMAGENT_QUIET;
  await rm(root, { recursive: true, force: true });
});

describe("installOnce", () => {
  it("installs into <cache>/<name> once and reuses it afterwards", async () => {
    let runs = 0;
    const install = async (dir: string) => {
      runs++;
      await writeFile(path.join(dir, "tool"), "v1");
    };
    const first = await installOnce("tool-1.0", "installing tool", install);
    const second = await installOnce("tool-1.0", "installing tool", install);
    expect(first).toBe(path.join(cacheDir(), "tool-1.0"));
    expect(second).toBe(first);
    expect(runs).toBe(1);
  });

  it("redoes a half-install from an empty directory", async () => {
    await expect(
      installOnce("half-1.0", "installing half", async (dir) => {
        await writeFile(path.join(dir, "partial"), "cut off here");
        throw new Error("network went away");
      }),
    ).rejects.toThrow("network went away");
    const dir = await installOnce("half-1.0", "installing half", async (target) => {
      expect(existsSync(path.join(target, "partial"))).toBe(false);
      await writeFile(path.join(target, "tool"), "complete");
    });
    expect(await readFile(path.join(dir, "tool"), "utf8")).toBe("complete");
  });

  it("lets one of two concurrent callers install while the other waits for it", async () => {
    let runs = 0;
    const install = async (dir: string) => {
      runs++;
      await new Promise((resolve) => setTimeout(resolve, 300));
      await writeFile(path.join(dir, "tool"), "once");
    };
    const dirs = await Promise.all([installOnce("shared-1.0", "installing", install), installOnce("shared-1.0", "installing", install)]);
    expect(dirs[0]).toBe(dirs[1]);
    expect(runs).toBe(1);
  });
});
