/**
 * Builds the browser client into a directory: `index.html` and the bundled
 * `main.js` (esbuild). `tsx clients/browser/build.ts [outDir]` builds into
 * `out/browser` by default; serve the directory with any static server.
 */
import { copyFile, mkdir } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));

/** Writes `index.html` and `main.js` into `outDir`; throws on a bundling error. */
export async function buildBrowserClient(outDir: string): Promise<void> {
  await mkdir(outDir, { recursive: true });
  await build({
    entryPoints: [join(here, "src", "main.ts")],
    outfile: join(outDir, "main.js"),
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    sourcemap: true,
    logLevel: "warning",
  });
  await copyFile(join(here, "index.html"), join(outDir, "index.html"));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await buildBrowserClient(resolve(process.argv[2] ?? "out/browser"));
}
