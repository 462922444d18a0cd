/**
 * The `issue-identity-token` side of the identity service: asks
 * `POST /v1/tokens/issue` for a token, verifies its EdDSA signature against
 * the service's `/.well-known/jwks.json`, checks that its claims are the ones
 * asked for, and maps it to `IdentityToken` proto JSON.
 */
import { createLocalJWKSet, errors as joseErrors, jwtVerify, type JSONWebKeySet, type JWTPayload } from "jose";
import type { ActivityDeps, TokenIssueRequest } from "../activities/deps.js";
import type { IdentityTokenResult } from "../workflows/contract.js";
import { PermanentCallError } from "../shared/call-errors.js";
import { requestJson } from "./http-json.js";

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
}

type KeySet = ReturnType<typeof createLocalJWKSet>;

/**
 * Builds the client. `issue` throws `TransientCallError` when the service or
 * its JWKS is unreachable, slow or answers 5xx; {@link PermanentCallError}
 * when it refuses (4xx: unknown user, inactive, tenant or capability not held,
 * MFA), or returns a token whose signature does not verify against the JWKS
 * or whose claims differ from the request.
 *
 * The JWKS is cached; a token signed with a key id the cache does not know
 * makes the call fetch it again once (the service may have a new key).
 */
export function createIdentityServiceClient(options: IdentityServiceClientOptions): ActivityDeps["identity"] {
  const jwksUrl = new URL("/.well-known/jwks.json", options.url);
  let cached: KeySet | undefined;

  async function fetchKeySet(signal?: AbortSignal): Promise<KeySet> {
    const { body } = await requestJson({ target: IDENTITY_JWKS_TARGET, url: jwksUrl, timeoutMs: options.timeoutMs, signal });
    try {
      cached = createLocalJWKSet(body as JSONWebKeySet);
    } catch (error) {
      throw new PermanentCallError(IDENTITY_JWKS_TARGET, `answered an invalid JWKS: ${(error as Error).message}`, undefined, { cause: error });
    }
    return cached;
  }

  async function verify(token: string, signal?: AbortSignal): Promise<{ payload: JWTPayload; kid: string }> {
    let fresh = cached === undefined;
    let keySet = cached ?? (await fetchKeySet(signal));
    for (;;) {
      try {
        const { payload, protectedHeader } = await jwtVerify(token, keySet, { algorithms: ["EdDSA"] });
        if (typeof protectedHeader.kid !== "string") throw new joseErrors.JWTInvalid("the token header has no kid");
        return { payload, kid: protectedHeader.kid };
      } catch (error) {
        // An unknown key id with a cached set: the service may have a new key since.
        if (error instanceof joseErrors.JWKSNoMatchingKey && !fresh) {
          keySet = await fetchKeySet(signal);
          fresh = true;
          continue;
        }
        if (error instanceof joseErrors.JOSEError) {
          throw new PermanentCallError(IDENTITY_SERVICE_TARGET, `issued a token that fails verification against ${jwksUrl.href}: ${error.message}`, undefined, {
            cause: error,
          });
        }
        throw error;
      }
    }
  }

  return {
    async issue(request, signal) {
      const { body } = await requestJson({
        target: IDENTITY_SERVICE_TARGET,
        url: options.url,
        method: "POST",
        body: request,
        timeoutMs: options.timeoutMs,
        signal,
      });
      const answer = parseIssueAnswer(body);
      const { payload, kid } = await verify(answer.token, signal);
      return { token: answer.token, tokenType: "Bearer", expiresIn: String(answer.expiresIn), claims: checkClaims(payload, kid, request) };
    },
  };
}

function parseIssueAnswer(body: unknown): { token: string; expiresIn: number } {
  const fail = (field: string): never => {
    throw new PermanentCallError(IDENTITY_SERVICE_TARGET, `answered a token without a valid ${field}`);
  };
  if (typeof body !== "object" || body === null || Array.isArray(body)) return fail("JSON object");
  const record = body as Record<string, unknown>;
  if (typeof record.token !== "string" || record.token === "") return fail("token");
  if (typeof record.token_type !== "string" || record.token_type.toLowerCase() !== "bearer") return fail("token_type");
  const expiresIn = record.expires_in;
  if (typeof expiresIn !== "number" || !Number.isSafeInteger(expiresIn) || expiresIn <= 0) return fail("expires_in");
  return { token: record.token, expiresIn };
}

/** The verified claims as `TokenClaims` proto JSON, after checking they are exactly what was asked for. */
function checkClaims(payload: JWTPayload, kid: string, request: TokenIssueRequest): NonNullable<IdentityTokenResult["claims"]> {
  const mismatch = (claim: string): never => {
    throw new PermanentCallError(IDENTITY_SERVICE_TARGET, `issued a token whose ${claim} claim does not match the request`);
  };
  if (payload.sub !== request.user_id) return mismatch("sub");
  if (payload.tenant_id !== request.tenant_id) return mismatch("tenant_id");
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
