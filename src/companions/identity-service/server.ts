/**
 * The identity service companion: issues EdDSA (Ed25519) JWTs to known users
 * for the tenants and capabilities they hold, and publishes its public key.
 *
 * - `POST /v1/tokens/issue` `{user_id, tenant_id, capabilities, mfa_code?}` →
 *   `{token, expires_in, token_type: "Bearer"}`; claims `iss`, `sub`,
 *   `tenant_id`, `capabilities`, `iat`, `exp`, `jti`; header `kid`.
 * - `POST /v1/tokens/verify` `{token}` → `{valid: true, claims}` or `{valid: false, reason}`.
 * - `GET /.well-known/jwks.json` → `{keys: [the public JWK]}`.
 *
 * Refusals, checked in this order: unknown user 404 `user_not_found`; inactive
 * 403 `user_inactive`; tenant not held 403 `tenant_not_allowed`; capability not
 * held 403 `capability_not_granted`; MFA code missing 400 `mfa_required`,
 * wrong or already used 400 `mfa_invalid`. MFA is checked last so a code is
 * only spent on a request that gets a token.
 */
import { randomUUID } from "node:crypto";
import { SignJWT, errors as joseErrors, jwtVerify } from "jose";
import type { Registry } from "prom-client";
import { HttpError } from "../../shared/http/errors.js";
import { createJsonService, type JsonService } from "../../shared/http/json-service.js";
import type { Logger } from "../../shared/logger.js";
import { expectObject, expectString, expectStringArray, loadDataFile } from "../request-fields.js";
import shippedUsers from "./default-users.json" with { type: "json" };
import type { SigningKey } from "./signing-key.js";
import { verifyTotp } from "./totp.js";
import { ID_RULES, parseUsersFile, type User } from "./users.js";

/** What {@link createIdentityServiceServer} needs. */
export interface IdentityServiceServerOptions {
  /** From `loadOrCreateSigningKey`. */
  signingKey: SigningKey;
  /** A users file to load instead of the shipped `default-users.json`. */
  usersFile?: string;
  /** The tokens' `iss` claim; `/v1/tokens/verify` requires it. */
  issuer: string;
  tokenTtlSeconds: number;
  /** Where the service's metrics register and what `/metrics` exposes; the entry point creates it. */
  registry: Registry;
  logger: Logger;
}

/**
 * Builds the identity service. Throws at construction when the users file
 * cannot be read or is invalid; the message names the file and the field.
 */
export function createIdentityServiceServer(options: IdentityServiceServerOptions): JsonService {
  const { signingKey, issuer, tokenTtlSeconds } = options;
  const users = loadDataFile(options.usersFile, { name: "default-users.json", value: shippedUsers }, parseUsersFile);
  // RFC 6238 §5.2: a code is accepted once. Kept in memory; a restart forgets it.
  const lastMfaStep = new Map<string, number>();

  function authorize(request: Record<string, unknown>): { user: User; tenantId: string; capabilities: string[] } {
    const userId = expectString(request.user_id, "user_id", ID_RULES);
    const tenantId = expectString(request.tenant_id, "tenant_id", ID_RULES);
    const capabilities = [...new Set(expectStringArray(request.capabilities, "capabilities", ID_RULES))];
    const mfaCode = request.mfa_code === undefined ? undefined : expectString(request.mfa_code, "mfa_code", { maxLength: 16 });
    const user = users.get(userId);
    if (!user) throw new HttpError(404, "user_not_found", `user_id ${JSON.stringify(userId)} is not a known user`);
    if (!user.active) throw new HttpError(403, "user_inactive", `user_id ${JSON.stringify(userId)} is inactive`);
    if (!user.tenants.includes(tenantId)) {
      throw new HttpError(403, "tenant_not_allowed", `user ${JSON.stringify(userId)} is not a member of tenant_id ${JSON.stringify(tenantId)}`);
    }
    const missing = capabilities.find((capability) => !user.capabilities.includes(capability));
    if (missing !== undefined) {
      throw new HttpError(403, "capability_not_granted", `user ${JSON.stringify(userId)} lacks the capability ${JSON.stringify(missing)}`);
    }
    if (user.mfaSecret) {
      if (mfaCode === undefined) throw new HttpError(400, "mfa_required", `mfa_code is required for user ${JSON.stringify(userId)}`);
      const step = verifyTotp(user.mfaSecret, mfaCode, Date.now() / 1000);
      if (step === undefined || step <= (lastMfaStep.get(userId) ?? -1)) {
        throw new HttpError(400, "mfa_invalid", "mfa_code is wrong, expired or already used");
      }
      lastMfaStep.set(userId, step);
    }
    return { user, tenantId, capabilities };
  }

  return createJsonService({
    registry: options.registry,
    metricPrefix: "somagent_identity_service",
    logger: options.logger,
    routes: [
      {
        method: "POST",
        path: "/v1/tokens/issue",
        async handle({ body }) {
          const { user, tenantId, capabilities } = authorize(expectObject(body, "body"));
          const issuedAt = Math.floor(Date.now() / 1000);
          const token = await new SignJWT({ tenant_id: tenantId, capabilities })
            .setProtectedHeader({ alg: "EdDSA", kid: signingKey.kid, typ: "JWT" })
            .setIssuer(issuer)
            .setSubject(user.userId)
            .setIssuedAt(issuedAt)
            .setExpirationTime(issuedAt + tokenTtlSeconds)
            .setJti(randomUUID())
            .sign(signingKey.privateKey);
          // RFC 6749 §5.1: token answers must not be cached.
          return { json: { token, expires_in: tokenTtlSeconds, token_type: "Bearer" }, headers: { "cache-control": "no-store" } };
        },
      },
      {
        method: "POST",
        path: "/v1/tokens/verify",
        async handle({ body }) {
          const token = expectString(expectObject(body, "body").token, "token", { maxLength: 8192 });
          try {
            const { payload } = await jwtVerify(token, signingKey.publicJwk, { issuer, algorithms: ["EdDSA"] });
            return { json: { valid: true, claims: payload } };
          } catch (error) {
            if (error instanceof joseErrors.JOSEError) return { json: { valid: false, reason: error.message } };
            throw error;
          }
        },
      },
      {
        method: "GET",
        path: "/.well-known/jwks.json",
        handle: () => ({ json: { keys: [signingKey.publicJwk] }, headers: { "cache-control": "public, max-age=300" } }),
      },
    ],
  });
}
