/**
 * `npm run temporal -- <args>` and `npm run grpcurl -- <args>`: the cached
 * Temporal CLI and grpcurl, installed on first use, run with the given
 * arguments; the exit code is the tool's. Install progress goes to stderr, so
 * `npm run -s` keeps stdout the tool's own.
 */
import { spawn } from "node:child_process";
import { installGrpcurl } from "./client-tools.js";
import { installTemporal } from "./temporal.js";

const TOOLS: Record<string, () => Promise<string>> = { temporal: installTemporal, grpcurl: installGrpcurl };

const [name = "", ...args] = process.argv.slice(2);
const install = TOOLS[name];
if (!install) {
  process.stderr.write(`usage: tsx local/tool.ts <${Object.keys(TOOLS).join("|")}> [args...]\n`);
  process.exit(2);
}
const child = spawn(await install(), args, { stdio: "inherit" });
// Ctrl-C reaches the tool through the terminal's process group; this process exits as it does.
process.on("SIGINT", () => {});
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
