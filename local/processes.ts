/**
 * Processes of the local stack: commands run to completion (installs) and
 * daemons (servers) that run in their own process group with their output in
 * a log file. A daemon's stop ends every process it started, the ones that
 * left its group too, and never anything else on the machine.
 */
import { spawn } from "node:child_process";
import { createWriteStream, readFileSync } from "node:fs";
import { mkdir, readFile, readdir } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { constants as osConstants } from "node:os";
import path from "node:path";

/** Ports this process has handed out, so two of its servers never get the same one. */
const handedOut = new Set<number>();

/**
 * Ports below this are never given out by the kernel on its own (Linux's
 * `ip_local_port_range` starts at 32768 by default): a port chosen there stays
 * free until the server it is meant for binds it, however long that takes.
 * Ray binds its Serve proxy port only when the first application deploys, and
 * a port from the kernel's range was once taken meanwhile by another process's
 * `bind(0)`, so the proxy never came up.
 */
function firstKernelPort(): number {
  try {
    const low = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 22_000 ? low : 32_768;
  } catch {
    return 32_768;
  }
}
/** From 20000: Ray's worker processes take ports 10002-19999 of their own. */
const CHOSEN_PORTS = { low: 20_000, high: firstKernelPort() - 1 };

function listensOn(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** A port free on 127.0.0.1 right now, outside the kernel's own range, and never one this process handed out before. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = CHOSEN_PORTS.low + Math.floor(Math.random() * (CHOSEN_PORTS.high - CHOSEN_PORTS.low + 1));
    if (handedOut.has(port) || !(await listensOn(port))) continue;
    handedOut.add(port);
    return port;
  }
}

/** The last `lines` lines of a log file, for error messages. */
export async function logTail(logFile: string, lines = 20): Promise<string> {
  const text = await readFile(logFile, "utf8").catch(() => "");
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

/** Options of {@link runCommand} and {@link startDaemon}. */
export interface CommandOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Appends stdout and stderr here. */
  logFile: string;
}

async function openLog(logFile: string) {
  await mkdir(path.dirname(logFile), { recursive: true });
  const stream = createWriteStream(logFile, { flags: "a" });
  await new Promise((resolve) => stream.once("open", resolve));
  return stream;
}

/** Runs a command to its end; throws with the log's tail when it exits non-zero. */
export async function runCommand(command: string, args: string[], options: CommandOptions): Promise<void> {
  const log = await openLog(options.logFile);
  log.write(`$ ${command} ${args.join(" ")}\n`);
  const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ["ignore", log, log] });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (exitCode, signal) => resolve(signal ? 128 : exitCode));
  }).finally(() => log.end());
  if (code !== 0) {
    throw new Error(`${command} ${args.join(" ")} exited with ${code}; log ${options.logFile}:\n${await logTail(options.logFile)}`);
  }
}

interface ProcessRow {
  pid: number;
  ppid: number;
  pgid: number;
  /** Start time in clock ticks since boot: with the pid, names one process even after pid reuse. */
  start: string;
}

/** Live processes (zombies excluded: they have ended and only wait to be reaped). */
async function processTable(): Promise<ProcessRow[]> {
  const rows: ProcessRow[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (fields[0] === "Z") continue;
      rows.push({ pid: Number(entry), ppid: Number(fields[1]), pgid: Number(fields[2]), start: fields[19] ?? "" });
    } catch {
      // The process ended while we looked.
    }
  }
  return rows;
}

/** A server process (and whatever it starts) in a process group of its own. */
export interface Daemon {
  name: string;
  logFile: string;
  /** Pid of the group leader. */
  pid: number;
  /** Whether the leader has exited; the exit code (or 128 + signal) when it has. */
  exitCode(): number | undefined;
  /** Settles with the exit code (or 128 + signal) when the leader exits. */
  exited: Promise<number>;
  /** Live processes that belong to this daemon: its group and every descendant ever seen. */
  pids(): Promise<number[]>;
  /** SIGTERM to every process of the daemon, SIGKILL after `graceMs`; resolves when none is left. */
  stop(graceMs?: number): Promise<void>;
}

const running = new Set<Daemon>();
let exitHookInstalled = false;

/** If this process dies before a daemon was stopped, the daemon's group dies with it: no orphans. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const daemon of running) {
      try {
        process.kill(-daemon.pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
  });
}

/**
 * Starts `command` detached in its own process group, output appended to
 * `logFile`. Processes it starts that move to other groups (Ray's workers)
 * are followed through their parents and stopped with it.
 */
export async function startDaemon(name: string, command: string, args: string[], options: CommandOptions): Promise<Daemon> {
  const log = await openLog(options.logFile);
  log.write(`\n$ ${command} ${args.join(" ")}\n`);
  const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, detached: true, stdio: ["ignore", log, log] });
  await new Promise<void>((resolve, reject) => {
    child.once("spawn", resolve);
    child.once("error", reject);
  });
  log.end();
  const pgid = child.pid!;
  let exit: number | undefined;
  const exited = new Promise<number>((resolve) => {
    child.once("exit", (code, signal) => {
      exit = signal ? 128 + (osConstants.signals[signal] ?? 0) : (code ?? 0);
      resolve(exit);
    });
  });
  const seen = new Map<number, string>();

  async function pids(): Promise<number[]> {
    const table = await processTable();
    const isSeen = (row: ProcessRow): boolean => seen.get(row.pid) === row.start;
    for (const row of table) if (row.pgid === pgid) seen.set(row.pid, row.start);
    for (let grew = true; grew; ) {
      grew = false;
      for (const row of table) {
        if (!isSeen(row) && table.some((parent) => parent.pid === row.ppid && isSeen(parent))) {
          seen.set(row.pid, row.start);
          grew = true;
        }
      }
    }
    return table.filter(isSeen).map((row) => row.pid);
  }

  const signalAll = (list: number[], signal: NodeJS.Signals): void => {
    for (const pid of list) {
      try {
        process.kill(pid, signal);
      } catch {
        // Already gone.
      }
    }
  };

  const waitGone = async (ms: number): Promise<boolean> => {
    const deadline = Date.now() + ms;
    for (;;) {
      if ((await pids()).length === 0) return true;
      if (Date.now() > deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };

  const daemon: Daemon = {
    name,
    logFile: options.logFile,
    pid: pgid,
    exitCode: () => exit,
    exited,
    pids,
    async stop(graceMs = 10_000) {
      signalAll(await pids(), "SIGTERM");
      if (!(await waitGone(graceMs))) {
        signalAll(await pids(), "SIGKILL");
        if (!(await waitGone(5_000))) throw new Error(`${name}: processes ${(await pids()).join(", ")} survived SIGKILL`);
      }
      running.delete(daemon);
    },
  };
  await pids();
  running.add(daemon);
  installExitHook();
  return daemon;
}

/**
 * Calls `probe` until it returns true, failing with a message that names the
 * component and its log when the deadline passes or the daemon exits.
 */
export async function waitUntil(
  component: string,
  probe: () => Promise<boolean>,
  /** `daemon`: fail at once when this process exits (leave unset for launchers that exit by design). */
  options: { timeoutMs: number; logFile: string; daemon?: Daemon },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    if (await probe().catch(() => false)) return;
    const exited = options.daemon?.exitCode();
    if (exited !== undefined) {
      throw new Error(`${component} exited with ${exited} before it was healthy; log ${options.logFile}:\n${await logTail(options.logFile)}`);
    }
    if (Date.now() > deadline) {
      throw new Error(
        `${component} was not healthy within ${Math.round(options.timeoutMs / 1000)} s; log ${options.logFile}:\n${await logTail(options.logFile)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** True when something accepts TCP connections on 127.0.0.1:`port`. */
export async function portOpen(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, host, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** Something `npm start` runs whose process can exit: a service or an infrastructure component. */
export interface Component {
  daemon: Daemon;
  /** Stops every process of the component. */
  stop(): Promise<void>;
}

/** A component kept running: restarted with backoff whenever its process exits, until {@link Supervised.stop}. */
export interface Supervised<T extends Component> {
  name: string;
  /** The running instance (a new one after each restart). */
  current(): T;
  /** False from an exit until the restarted instance is healthy. */
  up(): boolean;
  /** Restarts so far. */
  restarts(): number;
  /** Stops the component without restarting it (waiting for a restart in progress to end first). */
  stop(): Promise<void>;
}

/** Restart delays: 1 s, doubling, at most 30 s; back to 1 s once an instance has run for a minute. */
export const RESTART_BACKOFF = { initialMs: 1_000, maxMs: 30_000, stableMs: 60_000 } as const;

/**
 * Keeps `first` running: when its process exits (a crash, a SIGKILL), the rest
 * of its processes are stopped and `start` is called again after a delay
 * (1 s, 2 s, … {@link RESTART_BACKOFF}), and again after each failed start.
 * Every exit and restart is `report`ed with the exit code and the log file.
 */
export function supervise<T extends Component>(
  name: string,
  first: T,
  start: () => Promise<T>,
  report: (line: string) => void,
  backoff: { initialMs: number; maxMs: number; stableMs: number } = RESTART_BACKOFF,
): Supervised<T> {
  let instance = first;
  let up = true;
  let restarts = 0;
  const stopping = new AbortController();
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      stopping.signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
    });

  async function restartAfterEachExit(): Promise<void> {
    let delayMs = backoff.initialMs;
    for (;;) {
      const upSince = Date.now();
      const code = await instance.daemon.exited;
      if (stopping.signal.aborted) return;
      up = false;
      if (Date.now() - upSince >= backoff.stableMs) delayMs = backoff.initialMs;
      report(`${name} exited with code ${code}; restarting in ${delayMs / 1000}s (log ${instance.daemon.logFile})`);
      // What the leader left behind (children in its group) goes too, so the restart finds its ports free.
      await instance.stop().catch(() => {});
      for (;;) {
        await pause(delayMs);
        if (stopping.signal.aborted) return;
        delayMs = Math.min(2 * delayMs, backoff.maxMs);
        try {
          instance = await start();
          break;
        } catch (error) {
          report(`${name} did not come back: ${(error as Error).message.split("\n")[0]}; trying again in ${delayMs / 1000}s`);
        }
      }
      if (stopping.signal.aborted) return void (await instance.stop());
      up = true;
      restarts += 1;
      report(`${name} restarted and healthy (restart ${restarts}, log ${instance.daemon.logFile})`);
    }
  }

  const watching = restartAfterEachExit();
  return {
    name,
    current: () => instance,
    up: () => up,
    restarts: () => restarts,
    async stop() {
      stopping.abort();
      if (instance.daemon.exitCode() === undefined) await instance.stop();
      await watching;
    },
  };
}

/** `instance` as a {@link Supervised} that restarts nothing: tests and the bench stop and restart services themselves. */
export function unsupervised<T extends Component>(name: string, instance: T): Supervised<T> {
  return {
    name,
    current: () => instance,
    up: () => instance.daemon.exitCode() === undefined,
    restarts: () => 0,
    async stop() {
      if (instance.daemon.exitCode() === undefined) await instance.stop();
    },
  };
}
