/**
 * Builds the session console into a directory the API serves at `/`:
 * `index.html` plus the bundled script and stylesheet (esbuild, minified),
 * whose names carry a hash of their content so the API may let browsers
 * cache them for good while `index.html` is revalidated on each load.
 * `tsx console/build.ts [outDir]` builds into `dist/console` by default
 * (`npm install` and `npm run build` run it).
 */
import { copyFile, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));

/** Where `npm run build:console` writes, relative to the package root; the API's default `API_CONSOLE_DIR`. */
export const CONSOLE_BUILD_DIR = join("dist", "console");

/** Writes the console into `outDir` (emptied first); throws on a bundling error. */
export async function buildConsole(outDir: string): Promise<void> {
  await rm(outDir, { recursive: true, force: true });
  await mkdir(outDir, { recursive: true });
  const result = await build({
    entryPoints: [join(here, "src", "main.ts"), join(here, "console.css")],
    outdir: outDir,
    entryNames: "[name]-[hash]",
    bundle: true,
    minify: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    metafile: true,
    logLevel: "warning",
  });
  const built = Object.keys(result.metafile.outputs).map((file) => basename(file));
  const named = (prefix: string, extension: string) => {
    const file = built.find((name) => name.startsWith(`${prefix}-`) && name.endsWith(extension));
    if (!file) throw new Error(`esbuild wrote no ${prefix}-*${extension} (wrote ${built.join(", ")})`);
    return file;
  };
  const page = (await readFile(join(here, "index.html"), "utf8"))
    .replace("%SCRIPT%", named("main", ".js"))
    .replace("%STYLE%", named("console", ".css"));
  await writeFile(join(outDir, "index.html"), page);
  await copyFile(join(here, "favicon.svg"), join(outDir, "favicon.svg"));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await buildConsole(resolve(process.argv[2] ?? CONSOLE_BUILD_DIR));
}
