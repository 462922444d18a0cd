/**
 * The identity service's Ed25519 signing key: generated on first start and
 * kept as a private JWK (mode 0600) in the key directory (mode 0700), so
 * tokens and the published JWKS survive a restart. The directory is the
 * service's state directory: its used MFA codes live there too.
 */
import { createHash, createPrivateKey, generateKeyPairSync, randomUUID, type KeyObject } from "node:crypto";
import { linkSync, mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { JWK } from "jose";

/** Name of the key file inside the key directory. */
export const SIGNING_KEY_FILE = "signing-key.jwk.json";

/** The loaded key: the private half for signing, the public JWK for `/.well-known/jwks.json`. */
export interface SigningKey {
  privateKey: KeyObject;
  /** `kty`, `crv`, `x`, plus `kid`, `alg: EdDSA` and `use: sig`. */
  publicJwk: JWK & { kid: string };
  kid: string;
}

/**
 * Creates `dir` (0700) when absent, and checks it when present: a directory
 * owned by this process's user that no one else may read, write or enter.
 * Throws otherwise, saying how to fix it, rather than fixing it: a key that
 * others could read may already be in their hands.
 */
export function ensurePrivateDirectory(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  checkPrivate(dir, "directory", 0o700);
}

/** Checks that `path` is a file owned by this process's user that no one else may read or write (0600 or stricter). */
export function checkPrivateFile(path: string): void {
  checkPrivate(path, "file", 0o600);
}

function checkPrivate(path: string, kind: "directory" | "file", wanted: number): void {
  const stats = statSync(path);
  if (kind === "directory" ? !stats.isDirectory() : !stats.isFile()) throw new Error(`${path} is not a ${kind}`);
  const mode = stats.mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new Error(`${kind} ${path} has mode ${mode.toString(8).padStart(4, "0")}, open to other users: it must be ${wanted.toString(8).padStart(4, "0")} (chmod ${wanted.toString(8)} ${path}; if others could read it, replace the key)`);
  }
  const uid = process.getuid?.();
  if (uid !== undefined && stats.uid !== uid) throw new Error(`${kind} ${path} belongs to uid ${stats.uid}, not to this process's uid ${uid}`);
}

/**
 * Loads the key from `dir`, creating the directory (0700) and the key (0600)
 * when absent. Throws when the directory or the file is open to other users
 * or not this user's ({@link ensurePrivateDirectory}), or when the file is
 * not an Ed25519 private JWK.
 */
export function loadOrCreateSigningKey(dir: string): SigningKey {
  ensurePrivateDirectory(dir);
  const path = join(dir, SIGNING_KEY_FILE);
  let text: string;
  try {
    checkPrivateFile(path);
    text = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    createKeyFile(path);
    text = readFileSync(path, "utf8");
  }
  let jwk: JWK;
  try {
    jwk = JSON.parse(text) as JWK;
  } catch {
    throw new Error(`signing key ${path} is not JSON`);
  }
  if (jwk.kty !== "OKP" || jwk.crv !== "Ed25519" || typeof jwk.x !== "string" || typeof jwk.d !== "string") {
    throw new Error(`signing key ${path} is not an Ed25519 private JWK`);
  }
  const kid = thumbprint(jwk.x);
  return {
    privateKey: createPrivateKey({ key: { kty: "OKP", crv: "Ed25519", x: jwk.x, d: jwk.d }, format: "jwk" }),
    publicJwk: { kty: "OKP", crv: "Ed25519", x: jwk.x, kid, alg: "EdDSA", use: "sig" },
    kid,
  };
}

/** Writes a new key so that it appears whole or not at all, even when two processes start at once. */
function createKeyFile(path: string): void {
  const jwk = generateKeyPairSync("ed25519").privateKey.export({ format: "jwk" });
  const temporary = `${path}.${randomUUID()}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(jwk)}\n`, { mode: 0o600, flag: "wx" });
  try {
    linkSync(temporary, path);
  } catch (error) {
    // Another process created the key first: use theirs.
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  } finally {
    unlinkSync(temporary);
  }
}

/** The RFC 7638 thumbprint of an Ed25519 public key: sha256 of its required members in order, base64url. */
function thumbprint(x: string): string {
  return createHash("sha256").update(JSON.stringify({ crv: "Ed25519", kty: "OKP", x })).digest("base64url");
}
