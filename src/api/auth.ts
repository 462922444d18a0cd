/**
 * Caller authentication: one interceptor for every protocol (the REST
 * transcoder runs the same chain). With `API_AUTH_JWKS_URL` set, each call of
 * a protected service must carry `Authorization: Bearer <JWT>`, verified with
 * `jose` against the issuer's JWKS (signature, `iss`, `aud`, `exp`/`nbf` with
 * a small clock skew). The caller's user is the token's `sub`, its tenant the
 * `tenant_id` claim. Refusals are UNAUTHENTICATED with an RFC 6750
 * `WWW-Authenticate: Bearer` challenge in the error's metadata (a response
 * header for REST and Connect unary, a header or trailer for gRPC).
 * Without authentication every call runs as the anonymous caller.
 */
import type { DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, createContextKey, type ContextValues, type Interceptor } from "@connectrpc/connect";
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload } from "jose";
import type { ApiAuthConfig } from "../config.js";
import type { Logger } from "../shared/logger.js";
import { ANONYMOUS_CALLER, type SessionCaller } from "../temporal/session-port.js";
import { CALLER } from "./stream-limits.js";

/** The claim naming the caller's tenant (the identity service's claim); the user is `sub`. */
export const TENANT_CLAIM = "tenant_id";

/** The realm of the `WWW-Authenticate` challenge. */
const REALM = "somagent-orchestrator";

/**
 * The caller of this call, as the auth interceptor established it. Unset
 * (`undefined`) means the interceptor did not run: handlers refuse, so a
 * wiring mistake fails closed instead of serving an anonymous caller.
 */
export const SESSION_CALLER = createContextKey<SessionCaller | undefined>(undefined, { description: "authenticated caller" });

/** The caller of a call in a handler; throws INTERNAL when the auth interceptor did not run. */
export function sessionCallerOf(values: ContextValues): SessionCaller {
  const caller = values.get(SESSION_CALLER);
  if (caller === undefined) throw new Error("no caller on the call: the auth interceptor is not installed");
  return caller;
}

/** Verifies a bearer token; resolves with the caller or throws a `ConnectError`. */
export type TokenVerifier = (token: string) => Promise<SessionCaller & { authenticated: true }>;

/**
 * A verifier over `config`'s remote JWKS: keys are fetched on first use,
 * cached (10 min), and fetched again when a token names an unknown `kid` (at
 * most once per `jwksCooldownMs`, so random `kid`s cannot turn callers into a
 * flood on the issuer); each fetch is bounded by `jwksTimeoutMs`. A JWKS that cannot be
 * fetched is UNAVAILABLE (logged), not the caller's fault.
 */
export function createJwtVerifier(config: ApiAuthConfig, logger: Logger): TokenVerifier {
  const jwks = createRemoteJWKSet(config.jwksUrl, {
    timeoutDuration: config.jwksTimeoutMs,
    cooldownDuration: config.jwksCooldownMs,
    cacheMaxAge: 10 * 60_000,
  });
  return async (token) => {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, jwks, {
        issuer: config.issuer,
        audience: config.audience,
        clockTolerance: config.clockSkewSeconds,
        requiredClaims: ["exp", "sub", TENANT_CLAIM],
      }));
    } catch (error) {
      throw verificationError(error, logger);
    }
    const tenant = payload[TENANT_CLAIM];
    const user = payload.sub;
    if (typeof tenant !== "string" || tenant === "" || typeof user !== "string" || user === "") {
      throw unauthenticated(`the token's sub and ${TENANT_CLAIM} claims must be non-empty strings`, "invalid_token");
    }
    return { authenticated: true, tenant, user };
  };
}

/** What a failed verification tells the caller: which check failed, never the token. */
function verificationError(error: unknown, logger: Logger): ConnectError {
  if (error instanceof joseErrors.JWTExpired) return unauthenticated("the bearer token has expired", "invalid_token");
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    return unauthenticated(`the bearer token's ${error.claim} claim is not accepted (${error.reason})`, "invalid_token");
  }
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return unauthenticated("the bearer token's signature is invalid", "invalid_token");
  if (error instanceof joseErrors.JWKSNoMatchingKey || error instanceof joseErrors.JWKSMultipleMatchingKeys) {
    return unauthenticated("the bearer token is not signed by a key of the issuer", "invalid_token");
  }
  if (error instanceof joseErrors.JWKSTimeout || error instanceof joseErrors.JWKSInvalid || !(error instanceof joseErrors.JOSEError)) {
    logger.error("cannot fetch the JWKS to verify bearer tokens", { error: error instanceof Error ? error.message : String(error) });
    return new ConnectError("bearer tokens cannot be verified right now (the issuer's keys are unreachable); try again later", Code.Unavailable);
  }
  // JWSInvalid, JWTInvalid, JOSEAlgNotAllowed, JOSENotSupported...: a token we cannot read.
  return unauthenticated("the bearer token is malformed or uses an unsupported algorithm", "invalid_token");
}

/** UNAUTHENTICATED with the RFC 6750 §3 challenge; no error attribute when no token was sent (§3.1). */
function unauthenticated(message: string, error?: "invalid_token"): ConnectError {
  const challenge = error
    ? `Bearer realm="${REALM}", error="${error}", error_description="${message.replace(/["\\]/g, "")}"`
    : `Bearer realm="${REALM}"`;
  return new ConnectError(message, Code.Unauthenticated, { "www-authenticate": challenge });
}

/**
 * Establishes the caller of each call: with `verifier`, calls of `protectedServices`
 * need a valid bearer token (other services, health and reflection, stay
 * open); without it, every caller is anonymous. Sets {@link SESSION_CALLER}
 * and, for an authenticated caller, the per-caller limit key {@link CALLER}.
 * Runs before validation, so an unauthenticated caller learns nothing of the contract.
 */
export function createAuthInterceptor(verifier: TokenVerifier | undefined, protectedServices: readonly DescService[]): Interceptor {
  const guarded = new Set(protectedServices.map((service) => service.typeName));
  return (next) => async (req) => {
    if (!verifier || !guarded.has(req.service.typeName)) {
      req.contextValues.set(SESSION_CALLER, ANONYMOUS_CALLER);
      return next(req);
    }
    const token = bearerToken(req.header.get("authorization"));
    const caller = await verifier(token);
    req.contextValues.set(SESSION_CALLER, caller);
    req.contextValues.set(CALLER, JSON.stringify([caller.tenant, caller.user]));
    return next(req);
  };
}

/** The token of an `Authorization: Bearer <token>` header (RFC 6750 §2.1); throws UNAUTHENTICATED otherwise. */
export function bearerToken(header: string | null): string {
  if (header === null || header.trim() === "") throw unauthenticated("this call needs an Authorization: Bearer <token> header");
  const match = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header);
  if (!match?.[1]) throw unauthenticated("the Authorization header must be 'Bearer <token>' with one token", "invalid_token");
  return match[1];
}
