/**
 * Time-based one-time passwords (RFC 6238 over RFC 4226's HOTP), as
 * authenticator apps compute them: SHA-1, 30-second steps, 6 digits.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

/** Parameters of {@link totp}; the defaults are what authenticator apps use. */
export interface TotpOptions {
  digits?: number;
  stepSeconds?: number;
  algorithm?: "sha1" | "sha256" | "sha512";
}

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** Decodes RFC 4648 base32 (case-insensitive; spaces and `=` padding ignored); throws on another character. */
export function base32Decode(text: string): Buffer {
  const bytes: number[] = [];
  let bits = 0;
  let value = 0;
  for (const char of text.replace(/[\s=]/g, "").toUpperCase()) {
    const index = BASE32.indexOf(char);
    if (index < 0) throw new Error(`not base32: ${JSON.stringify(char)}`);
    value = (value << 5) | index;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      bytes.push((value >>> bits) & 0xff);
    }
  }
  return Buffer.from(bytes);
}

/** The HOTP value (RFC 4226) of `counter`: dynamic truncation of an HMAC, zero-padded to `digits`. */
export function hotp(secret: Buffer, counter: number, digits = 6, algorithm: TotpOptions["algorithm"] = "sha1"): string {
  const message = Buffer.alloc(8);
  message.writeBigUInt64BE(BigInt(counter));
  const mac = createHmac(algorithm, secret).update(message).digest();
  const offset = (mac[mac.length - 1] ?? 0) & 0x0f;
  const binary = mac.readUInt32BE(offset) & 0x7fffffff;
  return String(binary % 10 ** digits).padStart(digits, "0");
}

/** The TOTP value (RFC 6238) at `timeSeconds` (Unix time). */
export function totp(secret: Buffer, timeSeconds: number, options: TotpOptions = {}): string {
  const stepSeconds = options.stepSeconds ?? 30;
  return hotp(secret, Math.floor(timeSeconds / stepSeconds), options.digits ?? 6, options.algorithm ?? "sha1");
}

/**
 * Checks `code` against the steps around `timeSeconds` (±`window`, default 1,
 * for clock drift and typing time) with the app defaults. Returns the matched
 * time step, so the caller can refuse a code used before, or undefined.
 */
export function verifyTotp(secret: Buffer, code: string, timeSeconds: number, window = 1): number | undefined {
  if (!/^\d{6}$/.test(code)) return undefined;
  const current = Math.floor(timeSeconds / 30);
  for (let step = current - window; step <= current + window; step++) {
    if (timingSafeEqual(Buffer.from(hotp(secret, step)), Buffer.from(code))) return step;
  }
  return undefined;
}
