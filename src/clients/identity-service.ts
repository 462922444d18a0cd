/**
 * The identity service's client: asks `POST /v1/tokens/issue` for a token (in
 * the service's snake_case body), verifies its EdDSA signature against the
 * service's `/.well-known/jwks.json`, checks that its claims are the ones
 * asked for, and maps it to `IdentityToken` proto JSON.
 */
import { createRemoteJWKSet, customFetch, errors as joseErrors, jwtVerify, type JWTPayload } from "jose";
import type { IdentityTokenJson, TokenClaimsJson } from "../../gen/somagent/orchestrator/v1/session_pb.js";
import type { ClientCredentials } from "../config.js";
import { PermanentCallError } from "../shared/call-errors.js";
import { basicAuthorization } from "../shared/http/credentials.js";
import { sessionHeaders, type SessionRef } from "../shared/http/session-headers.js";
import { readAnswer } from "../shared/json-answer.js";
import type { Registry } from "../shared/metrics.js";
import { createRequestJson } from "./http-json.js";

/** Metric and error label of token requests. */
export const IDENTITY_SERVICE_TARGET = "identity-service";
/** Metric and error label of JWKS fetches. */
export const IDENTITY_JWKS_TARGET = "identity-service-jwks";

/** Where the identity service is and how long one call may take. */
export interface IdentityServiceClientOptions {
  /**
   * The issue endpoint itself, e.g. `http://127.0.0.1:8102/v1/tokens/issue`
   * (`IDENTITY_SERVICE_URL`); the JWKS is read from the same origin's `/.well-known/jwks.json`.
   */
  url: URL | string;
  /** Limit of one call, token request or JWKS fetch. */
  timeoutMs: number;
  /** The worker's client id and secret, sent as HTTP Basic on every token request (`IDENTITY_SERVICE_CLIENT_*`). */
  credentials: ClientCredentials;
  /** Where the client's outbound-call metrics are registered. */
  registry: Registry;
}

/** The token asked for. */
export interface TokenIssueRequest {
  userId: string;
  tenantId: string;
  capabilities: string[];
  /** The user's current TOTP code, for users enrolled in MFA. */
  mfaCode?: string;
  /**
   * Names the session the token is for: a retry of the same session with the
   * same code gets a token again, where another session's reuse of the code is refused.
   */
  sessionId?: string;
  /** The session and workflow asking, sent as headers so the service's log lines name them. */
  session?: SessionRef;
}

/** The identity service as the worker sees it. */
export interface IdentityServiceClient {
  /**
   * Issues a token and verifies it before returning it. Throws
   * `TransientCallError` when the service or its JWKS is unreachable, slow or
   * answers 5xx; `PermanentCallError` when it refuses (403 `access_denied`,
   * one answer for every reason: the service logs which; 403 `locked_out`
   * after too many refusals for the user), or returns a token whose
   * signature does not verify against the JWKS or whose claims differ from the request.
   */
  issue(request: TokenIssueRequest, signal?: AbortSignal): Promise<IdentityTokenJson>;
}

/**
 * Builds the client. The JWKS is jose's remote key set: cached, and fetched
 * again when a token names a key id it does not know (the service may have a
 * new key); its fetches go through the clients' HTTP helper, so they are
 * timed, counted and classified like every other call.
 */
export function createIdentityServiceClient(options: IdentityServiceClientOptions): IdentityServiceClient {
  const requestJson = createRequestJson(options.registry);
  const authorization = basicAuthorization(options.credentials.id, options.credentials.secret);
  const jwksUrl = new URL("/.well-known/jwks.json", options.url);
  const keySet = createRemoteJWKSet(jwksUrl, {
    timeoutDuration: options.timeoutMs,
    // Tokens come from the service just asked, not from a caller: an unknown kid is a rotation, so refetch at once.
    cooldownDuration: 0,
    // The key set is shared by every call, so no one call's signal may abort its fetch; the timeout bounds it.
    [customFetch]: async (url, init) => {
      const { status, body } = await requestJson({ target: IDENTITY_JWKS_TARGET, url, timeoutMs: options.timeoutMs, signal: init.signal });
      // An empty answer reaches jose as `null`, which it refuses as an invalid JWKS.
      return new Response(JSON.stringify(body ?? null), { status, headers: { "content-type": "application/json" } });
    },
  });

  async function verify(token: string): Promise<{ payload: JWTPayload; kid: string }> {
    try {
      const { payload, protectedHeader } = await jwtVerify(token, keySet, { algorithms: ["EdDSA"] });
      if (typeof protectedHeader.kid !== "string") throw new joseErrors.JWTInvalid("the token header has no kid");
      return { payload, kid: protectedHeader.kid };
    } catch (error) {
      if (error instanceof joseErrors.JWKSInvalid) {
        throw new PermanentCallError(IDENTITY_JWKS_TARGET, `answered an invalid JWKS: ${error.message}`, undefined, { cause: error });
      }
      if (error instanceof joseErrors.JOSEError) {
        throw new PermanentCallError(IDENTITY_SERVICE_TARGET, `issued a token that fails verification against ${jwksUrl.href}: ${error.message}`, undefined, {
          cause: error,
        });
      }
      throw error;
    }
  }

  return {
    async issue(request, signal) {
      const body: Record<string, unknown> = { user_id: request.userId, tenant_id: request.tenantId, capabilities: request.capabilities };
      if (request.mfaCode !== undefined) body.mfa_code = request.mfaCode;
      if (request.sessionId !== undefined) body.session_id = request.sessionId;
      const answer = await requestJson({
        target: IDENTITY_SERVICE_TARGET,
        url: options.url,
        method: "POST",
        body,
        headers: { authorization, ...(request.session === undefined ? {} : sessionHeaders(request.session)) },
        timeoutMs: options.timeoutMs,
        signal,
      });
      const issued = readIssueAnswer(answer.body);
      signal?.throwIfAborted();
      const { payload, kid } = await verify(issued.token);
      return { token: issued.token, tokenType: "Bearer", expiresIn: String(issued.expiresIn), claims: checkClaims(payload, kid, request) };
    },
  };
}

/** Reads the issue answer (`token`, `token_type` Bearer, `expires_in` > 0). */
function readIssueAnswer(body: unknown): { token: string; expiresIn: number } {
  const answer = readAnswer(IDENTITY_SERVICE_TARGET, "a token", body);
  const token = answer.string("token", { nonEmpty: true });
  if (answer.string("token_type").toLowerCase() !== "bearer") answer.fail("token_type");
  return { token, expiresIn: answer.integer("expires_in", { min: 1, max: Number.MAX_SAFE_INTEGER }) };
}

/** The verified claims as `TokenClaims` proto JSON, after checking they are exactly what was asked for. */
function checkClaims(payload: JWTPayload, kid: string, request: TokenIssueRequest): TokenClaimsJson {
  const mismatch = (claim: string): never => {
    throw new PermanentCallError(IDENTITY_SERVICE_TARGET, `issued a token whose ${claim} claim does not match the request`);
  };
  if (payload.sub !== request.userId) return mismatch("sub");
  if (payload.tenant_id !== request.tenantId) return mismatch("tenant_id");
  const capabilities = payload.capabilities;
  const asked = new Set(request.capabilities);
  if (
    !Array.isArray(capabilities) ||
    !capabilities.every((c): c is string => typeof c === "string") ||
    new Set(capabilities).size !== asked.size ||
    !capabilities.every((c) => asked.has(c))
  ) {
    return mismatch("capabilities");
  }
  if (typeof payload.iat !== "number") return mismatch("iat");
  if (typeof payload.exp !== "number") return mismatch("exp");
  if (typeof payload.jti !== "string" || payload.jti === "") return mismatch("jti");
  return {
    sub: payload.sub,
    tenantId: payload.tenant_id,
    capabilities,
    iat: new Date(payload.iat * 1000).toISOString(),
    exp: new Date(payload.exp * 1000).toISOString(),
    jti: payload.jti,
    kid,
  };
}
