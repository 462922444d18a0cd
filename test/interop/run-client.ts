/** Runs a client program as a real subprocess and collects what it printed. */
import { execFile } from "node:child_process";

/** What a finished client process left behind. */
export interface ClientRun {
  /** Exit code; null when it was killed (e.g. by the timeout). */
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Options of {@link runClient}. */
export interface RunClientOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** The process is killed after this long (default 120 s). */
  timeoutMs?: number;
}

/** Runs `command args`, never throws for a non-zero exit: the caller asserts on it. */
export function runClient(command: string, args: string[], options: RunClientOptions = {}): Promise<ClientRun> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      {
        cwd: options.cwd,
        env: { ...process.env, ...options.env },
        timeout: options.timeoutMs ?? 120_000,
        killSignal: "SIGKILL",
        maxBuffer: 16 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** The lines of `output` starting with `word `, without that word. */
export function linesOf(output: string, word: string): string[] {
  return output
    .split("\n")
    .filter((line) => line.startsWith(`${word} `))
    .map((line) => line.slice(word.length + 1));
}
