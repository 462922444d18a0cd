/**
 * Reading and checking the credentials a caller sends in `Authorization`:
 * HTTP Basic (RFC 7617, as OAuth's `client_secret_basic`, RFC 6749 §2.3.1)
 * and Bearer (RFC 6750). Secrets are compared in constant time, so the time
 * an answer takes tells nothing about how much of a guess was right.
 */
import { createHash, timingSafeEqual } from "node:crypto";

/**
 * Whether `given` equals `expected`, in time independent of where they
 * differ: both are hashed first, so their lengths leak nothing either.
 */
export function secretsEqual(given: string, expected: string): boolean {
  return secretMatcher(expected)(given);
}

/**
 * {@link secretsEqual} against one configured secret, whose digest is taken
 * once: for checks on every request (a service's client credentials).
 */
export function secretMatcher(expected: string): (given: string) => boolean {
  const expectedDigest = digest(expected);
  return (given) => timingSafeEqual(digest(given), expectedDigest);
}

function digest(value: string): Buffer {
  return createHash("sha256").update(value, "utf8").digest();
}

/** The `user:password` pair of an `Authorization: Basic ...` header, or undefined when the header is absent or not Basic. */
export function basicCredentials(authorization: string | undefined): { id: string; secret: string } | undefined {
  const match = /^Basic[ ]+([A-Za-z0-9+/]+={0,2})[ ]*$/i.exec(authorization ?? "");
  if (!match?.[1]) return undefined;
  const decoded = Buffer.from(match[1], "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) return undefined;
  return { id: decoded.slice(0, colon), secret: decoded.slice(colon + 1) };
}

/** The token of an `Authorization: Bearer ...` header, or undefined when the header is absent or not Bearer. */
export function bearerToken(authorization: string | undefined): string | undefined {
  return /^Bearer[ ]+([A-Za-z0-9\-._~+/]+=*)[ ]*$/i.exec(authorization ?? "")?.[1];
}

/** The `Authorization` value that {@link basicCredentials} reads back as `id` and `secret`. */
export function basicAuthorization(id: string, secret: string): string {
  return `Basic ${Buffer.from(`${id}:${secret}`, "utf8").toString("base64")}`;
}
