/**
 * Caller tokens for the local stack's API when it runs with `API_AUTH=jwt`:
 * JWTs signed with the local identity service's own key, so the API verifies
 * them against that service's `/.well-known/jwks.json` like any token it
 * issues. For any tenant and user: a local-stack tool (as the Ray token the
 * start summary prints), never shipped.
 */
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { SignJWT } from "jose";
import { SIGNING_KEY_FILE, loadOrCreateSigningKey, type SigningKey } from "../src/companions/identity-service/signing-key.js";

/** The `iss` the local identity service signs with (`IDENTITY_SERVICE_ISSUER`) and the API requires (`API_AUTH_ISSUER`). */
export const LOCAL_ISSUER = "somagent-identity-service";
/** The `aud` of caller tokens (`API_AUTH_AUDIENCE`); the identity service's session tokens carry none, so they are no caller tokens. */
export const LOCAL_API_AUDIENCE = "somagent-orchestrator-api";
/** Lifetime of a caller token the tool prints. */
export const CALLER_TOKEN_TTL_SECONDS = 3600;

/** The claims of a caller token; `sub` is the user, `tenant_id` the tenant (what the API reads). */
export interface CallerTokenRequest {
  tenant: string;
  user: string;
  issuer?: string;
  audience?: string;
  /** Seconds since the epoch; default now. */
  issuedAt?: number;
  ttlSeconds?: number;
}

/**
 * The identity service's signing key, read from its key directory
 * (`IDENTITY_SERVICE_KEY_DIR`) with the service's own loader. The one place
 * this tool depends on the identity service: it assumes the key file
 * `signing-key.jwk.json` (an Ed25519 private JWK) that the service publishes
 * in its JWKS under the RFC 7638 thumbprint as `kid`. Throws when the
 * directory holds no key yet (the service has never started there).
 */
export function identityServiceSigningKey(keyDir: string): SigningKey {
  if (!existsSync(join(keyDir, SIGNING_KEY_FILE))) {
    throw new Error(`no identity service signing key in ${keyDir}: start the stack once (API_AUTH=jwt npm start) so the identity service creates it`);
  }
  return loadOrCreateSigningKey(keyDir);
}

/** Signs a caller token with `key` (EdDSA, `kid` of the published key). */
export function signCallerToken(key: SigningKey, request: CallerTokenRequest): Promise<string> {
  const issuedAt = request.issuedAt ?? Math.floor(Date.now() / 1000);
  return new SignJWT({ tenant_id: request.tenant })
    .setProtectedHeader({ alg: "EdDSA", kid: key.kid, typ: "JWT" })
    .setIssuer(request.issuer ?? LOCAL_ISSUER)
    .setAudience(request.audience ?? LOCAL_API_AUDIENCE)
    .setSubject(request.user)
    .setIssuedAt(issuedAt)
    .setExpirationTime(issuedAt + (request.ttlSeconds ?? CALLER_TOKEN_TTL_SECONDS))
    .setJti(randomUUID())
    .sign(key.privateKey);
}
