/**
 * The TOTP codes already spent, per user (RFC 6238 §5.2: a code is accepted
 * once), kept in a file of the service's state directory so a restart does
 * not make them valid again. Each user's entry is the last accepted time step
 * and the session it was spent for, so a retry of that same session can be
 * answered again without the code counting as a replay.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { randomUUID } from "node:crypto";
import { checkPrivateFile } from "./signing-key.js";

/** Name of the file inside the state (key) directory. */
export const USED_CODES_FILE = "used-mfa-codes.json";

/** The last code a user spent: its time step and the session it was spent for, when the caller named one. */
export interface UsedCode {
  step: number;
  session?: string;
}

/** The spent codes; every write reaches the disk before it returns. */
export interface UsedCodes {
  get(userId: string): UsedCode | undefined;
  /** Records `used` for `userId`, replacing the previous entry; throws when the file cannot be written. */
  record(userId: string, used: UsedCode): void;
}

/**
 * Opens the spent codes of the state directory `dir` (already checked
 * private). Throws when the file exists but is open to other users or is not
 * what this module writes: forgetting spent codes silently would let them be
 * used again.
 */
export function openUsedCodes(dir: string): UsedCodes {
  const path = join(dir, USED_CODES_FILE);
  const entries = load(path);
  return {
    get: (userId) => entries.get(userId),
    record(userId, used) {
      const next = new Map(entries).set(userId, used);
      write(path, next);
      entries.set(userId, used);
    },
  };
}

function load(path: string): Map<string, UsedCode> {
  let text: string;
  try {
    checkPrivateFile(path);
    text = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return new Map();
    throw error;
  }
  const invalid = () => new Error(`${path} is not a used-codes file ({"users": {user_id: {"step": n, "session"?: s}}}); move it away to start afresh`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw invalid();
  }
  const users = (value as { users?: unknown } | null)?.users;
  if (typeof users !== "object" || users === null || Array.isArray(users)) throw invalid();
  const entries = new Map<string, UsedCode>();
  for (const [userId, entry] of Object.entries(users)) {
    const { step, session } = (entry ?? {}) as { step?: unknown; session?: unknown };
    if (!Number.isSafeInteger(step) || (session !== undefined && typeof session !== "string")) throw invalid();
    entries.set(userId, session === undefined ? { step: step as number } : { step: step as number, session });
  }
  return entries;
}

/** Writes the whole file (0600) to a temporary name, syncs it and renames it over the old one: whole or not at all. */
function write(path: string, entries: Map<string, UsedCode>): void {
  const temporary = `${path}.${randomUUID()}.tmp`;
  const fd = openSync(temporary, "wx", 0o600);
  try {
    writeSync(fd, `${JSON.stringify({ users: Object.fromEntries(entries) })}\n`);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    unlinkSync(temporary);
    throw error;
  }
  closeSync(fd);
  renameSync(temporary, path);
  // The rename itself reaches the disk only with its directory.
  const directory = openSync(dirname(path), "r");
  try {
    fsyncSync(directory);
  } finally {
    closeSync(directory);
  }
}
