/**
 * The tenant and user a bearer token names, read without verifying it: only
 * to fill the start form, since the API takes both from the verified token
 * and refuses a body naming others.
 */

/** `tenant_id` and `sub` of a JWT's payload; empty strings when the token is not a readable JWT. */
export function tokenCaller(token: string): { tenant: string; user: string } {
  const payload = token.split(".")[1];
  if (payload === undefined) return { tenant: "", user: "" };
  try {
    const base64 = payload.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(payload.length / 4) * 4, "=");
    const claims: unknown = JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(base64), (c) => c.charCodeAt(0))));
    const text = (value: unknown) => (typeof value === "string" ? value : "");
    return typeof claims === "object" && claims !== null
      ? { tenant: text((claims as Record<string, unknown>).tenant_id), user: text((claims as Record<string, unknown>).sub) }
      : { tenant: "", user: "" };
  } catch {
    return { tenant: "", user: "" };
  }
}
