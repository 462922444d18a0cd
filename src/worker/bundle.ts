/**
 * Builds the workflow bundle ahead of time (`npm run build:workflow-bundle`),
 * so the production worker does not compile workflow code at start.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { bundleWorkflowCode } from "@temporalio/worker";
import { WORKFLOW_TRACING_MODULE } from "./tracing.js";

/** The workflow module the worker registers. */
export const WORKFLOWS_PATH = fileURLToPath(new URL("../workflows/index.ts", import.meta.url));

/** Where the prebuilt bundle lives, relative to the repository root. */
export const WORKFLOW_BUNDLE_PATH = fileURLToPath(new URL("../../dist/workflow-bundle.js", import.meta.url));

/**
 * Bundles the workflow code into `path`, with the tracing workflow interceptors
 * (a bundle cannot add them at start; untraced workers drop their spans, tracing.ts).
 * Throws when the code does not compile.
 */
export async function buildWorkflowBundle(path: string = WORKFLOW_BUNDLE_PATH): Promise<void> {
  const { code } = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, workflowInterceptorModules: [WORKFLOW_TRACING_MODULE] });
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, code);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await buildWorkflowBundle(process.argv[2]);
}
