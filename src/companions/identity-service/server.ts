/**
 * The identity service companion: issues EdDSA (Ed25519) JWTs to known users
 * for the tenants and capabilities they hold, and publishes its public key.
 *
 * - `POST /v1/tokens/issue` `{user_id, tenant_id, capabilities, mfa_code?, session_id?}` →
 *   `{token, expires_in, token_type: "Bearer"}`; claims `iss`, `sub`,
 *   `tenant_id`, `capabilities`, `iat`, `exp`, `jti`; header `kid`.
 * - `POST /v1/tokens/verify` `{token}` → `{valid: true, claims}` or `{valid: false, reason}`.
 * - `GET /.well-known/jwks.json` → `{keys: [the public JWK]}` (open to all).
 *
 * Both `/v1/tokens` routes need the client's id and secret as HTTP Basic
 * (RFC 6749 §2.3.1 `client_secret_basic`). Every refusal, whether of the
 * caller (no or wrong credentials) or of the token asked for (unknown user,
 * inactive, tenant or capability not held, MFA code missing, wrong or
 * already used), is the same 403 `access_denied`, so an answer never tells
 * which users exist or what they hold; the reason is logged. After
 * `maxFailedAttempts` refusals in a row for one `user_id` it is locked out
 * (403 `locked_out` with `Retry-After`, even with the right code): see
 * lockout.ts. A code is accepted once (its step is kept in the state
 * directory, see used-codes.ts), except by a retry of the session it was
 * spent for (same `session_id`, within 10 minutes), which gets a token again.
 */
import { randomUUID } from "node:crypto";
import { errors as joseErrors, jwtVerify } from "jose";
import type { Registry } from "prom-client";
import type { ClientCredentials } from "../../config.js";
import { basicCredentials, secretMatcher, secretsEqual } from "../../shared/http/credentials.js";
import { HttpError } from "../../shared/http/errors.js";
import { createJsonService, type GuardRequest, type JsonService } from "../../shared/http/json-service.js";
import type { Tracer } from "@opentelemetry/api";
import { sessionLogFields, type SessionLogFields } from "../../shared/http/session-headers.js";
import type { Logger } from "../../shared/logger.js";
import { expectObject, expectString, expectStringArray, loadDataFile } from "../request-fields.js";
import shippedUsers from "./default-users.json" with { type: "json" };
import { createLockout } from "./lockout.js";
import type { SigningKey } from "./signing-key.js";
import { createTokenSigner } from "./token-signer.js";
import { hotp, verifyTotp } from "./totp.js";
import { openUsedCodes, type UsedCode } from "./used-codes.js";
import { ID_RULES, parseUsersFile, type User } from "./users.js";

/** What {@link createIdentityServiceServer} needs. */
export interface IdentityServiceServerOptions {
  /** From `loadOrCreateSigningKey`. */
  signingKey: SigningKey;
  /** The state directory (the key directory, already checked private): where spent MFA codes are kept. */
  stateDir: string;
  /** A users file to load instead of the shipped `default-users.json`. */
  usersFile?: string;
  /** The tokens' `iss` claim; `/v1/tokens/verify` requires it. */
  issuer: string;
  tokenTtlSeconds: number;
  /** The one client allowed to use `/v1/tokens/*`. */
  client: ClientCredentials;
  /** Refusals in a row for one `user_id` that lock it out. */
  maxFailedAttempts: number;
  /** Length of the first lockout; each further one doubles. */
  lockoutSeconds: number;
  /** Host names the service answers to (besides IP literals). */
  allowedHosts: readonly string[];
  /** Where the service's metrics register and what `/metrics` exposes; the entry point creates it. */
  registry: Registry;
  logger: Logger;
  /** Traces each request (see ../tracing.ts); unset, nothing is traced. */
  tracer?: Tracer | undefined;
}

/** The one answer to every refused caller and every refused token request. */
const ACCESS_DENIED = new HttpError(403, "access_denied", "the token request was refused (the identity service's log has the reason)");

/** A refusal whose real reason is logged and never answered. */
class Refusal extends Error {}

/** The `session_id` a caller names its session with (the worker: the workflow's id and run id). */
const SESSION_RULES = { maxLength: 1100 };

/** How long after its time step a spent code still answers a retry of the session that spent it: 10 minutes. */
const SESSION_RETRY_STEPS = 20;

/**
 * Whether `code` is the code `used` recorded, presented again by the session
 * that spent it (same `session`) within {@link SESSION_RETRY_STEPS}: a retry
 * of that session's token step, answered again even once the code has left
 * its ±1 step window (Temporal's retries and a worker's restart take time).
 */
function isRetryOfSpendingSession(secret: Buffer, used: UsedCode, code: string, session: string | undefined, nowMs: number): boolean {
  if (session === undefined || used.session !== session) return false;
  if (Math.floor(nowMs / 1000 / 30) - used.step > SESSION_RETRY_STEPS) return false;
  return /^\d{6}$/.test(code) && secretsEqual(hotp(secret, used.step), code);
}

/**
 * Builds the identity service. Throws at construction when the users file
 * cannot be read or is invalid (the message names the file and the field),
 * or when the spent-codes file cannot be read.
 */
export function createIdentityServiceServer(options: IdentityServiceServerOptions): JsonService {
  const { signingKey, issuer, tokenTtlSeconds, logger } = options;
  const users = loadDataFile(options.usersFile, { name: "default-users.json", value: shippedUsers }, parseUsersFile);
  const usedCodes = openUsedCodes(options.stateDir);
  const lockout = createLockout(options);
  const signToken = createTokenSigner(signingKey);

  const isClientId = secretMatcher(options.client.id);
  const isClientSecret = secretMatcher(options.client.secret);

  /** Lets through the configured client only; everyone else gets the same answer as a refused token request. */
  function authenticateClient({ headers }: GuardRequest): void {
    const given = basicCredentials(headers.authorization);
    // Both compared in full, so the time taken does not say which was wrong.
    const idMatches = isClientId(given?.id ?? "");
    const secretMatches = isClientSecret(given?.secret ?? "");
    if (given && idMatches && secretMatches) return;
    logger.info("caller refused", { ...sessionLogFields(headers), reason: given ? "wrong client id or secret" : "no HTTP Basic client credentials" });
    throw ACCESS_DENIED;
  }

  /** Decides a token request; a refusal is logged as one line with `logFields` (the session it names) and the reason. */
  function authorize(request: Record<string, unknown>, logFields: SessionLogFields): { user: User; tenantId: string; capabilities: string[] } {
    const userId = expectString(request.user_id, "user_id", ID_RULES);
    const tenantId = expectString(request.tenant_id, "tenant_id", ID_RULES);
    const capabilities = [...new Set(expectStringArray(request.capabilities, "capabilities", ID_RULES))];
    const mfaCode = request.mfa_code === undefined ? undefined : expectString(request.mfa_code, "mfa_code", { maxLength: 16 });
    const session = request.session_id === undefined ? undefined : expectString(request.session_id, "session_id", SESSION_RULES);
    const now = Date.now();
    const lockedFor = lockout.lockedFor(userId, now);
    if (lockedFor > 0) {
      logger.info("token request refused", { ...logFields, user_id: userId, tenant_id: tenantId, reason: "locked out" });
      throw new HttpError(403, "locked_out", `too many refused token requests for this user_id: locked out, try again in ${lockedFor} s`, {
        "retry-after": String(lockedFor),
      });
    }
    try {
      const user = users.get(userId);
      if (!user) throw new Refusal("unknown user");
      if (!user.active) throw new Refusal("user inactive");
      if (!user.tenants.includes(tenantId)) throw new Refusal("tenant not allowed");
      const missing = capabilities.find((capability) => !user.capabilities.includes(capability));
      if (missing !== undefined) throw new Refusal(`capability ${JSON.stringify(missing)} not granted`);
      if (user.mfaSecret) {
        if (mfaCode === undefined) throw new Refusal("mfa_code required");
        const used = usedCodes.get(userId);
        if (!(used !== undefined && isRetryOfSpendingSession(user.mfaSecret, used, mfaCode, session, now))) {
          const step = verifyTotp(user.mfaSecret, mfaCode, now / 1000);
          if (step === undefined) throw new Refusal("mfa_code wrong or expired");
          if (used !== undefined && step <= used.step) throw new Refusal("mfa_code already used");
          // Recorded (on disk) before the token exists: a crash in between spends the code, never the reverse.
          usedCodes.record(userId, session === undefined ? { step } : { step, session });
        }
      }
      lockout.granted(userId);
      return { user, tenantId, capabilities };
    } catch (error) {
      if (!(error instanceof Refusal)) throw error;
      lockout.refused(userId, now);
      logger.info("token request refused", { ...logFields, user_id: userId, tenant_id: tenantId, reason: error.message });
      throw ACCESS_DENIED;
    }
  }

  return createJsonService({
    tracer: options.tracer,
    registry: options.registry,
    metricPrefix: "somagent_identity_service",
    logger,
    allowedHosts: options.allowedHosts,
    routes: [
      {
        method: "POST",
        path: "/v1/tokens/issue",
        guard: authenticateClient,
        async handle({ body, headers }) {
          const { user, tenantId, capabilities } = authorize(expectObject(body, "body"), sessionLogFields(headers));
          const issuedAt = Math.floor(Date.now() / 1000);
          const token = await signToken({
            iss: issuer,
            sub: user.userId,
            tenant_id: tenantId,
            capabilities,
            iat: issuedAt,
            exp: issuedAt + tokenTtlSeconds,
            jti: randomUUID(),
          });
          // RFC 6749 §5.1: token answers must not be cached.
          return { json: { token, expires_in: tokenTtlSeconds, token_type: "Bearer" }, headers: { "cache-control": "no-store" } };
        },
      },
      {
        method: "POST",
        path: "/v1/tokens/verify",
        guard: authenticateClient,
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
