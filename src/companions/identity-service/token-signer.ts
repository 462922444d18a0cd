/**
 * Signs the service's tokens: JWS compact serialization (RFC 7515 §7.1) with
 * EdDSA over Ed25519 (RFC 8037), the form jose and every JWT library verify.
 * Written out here instead of with jose's `SignJWT`, which goes through
 * WebCrypto for every token: the header is the same for every token, so it
 * is encoded once, and the signature is node:crypto's one-shot Ed25519 sign
 * on the key object loaded at start (measured: about half the CPU per token).
 * Given a callback, node:crypto signs on libuv's thread pool: the event loop
 * goes on parsing and answering other requests meanwhile, for the same CPU.
 */
import { sign } from "node:crypto";
import type { SigningKey } from "./signing-key.js";

/** The claims of one token; `iat` and `exp` in seconds since the epoch. */
export interface TokenClaims {
  iss: string;
  sub: string;
  tenant_id: string;
  capabilities: string[];
  iat: number;
  exp: number;
  jti: string;
}

/** Builds a signer for `key`: claims in, a signed JWT out; rejects only if OpenSSL fails to sign. */
export function createTokenSigner(key: SigningKey): (claims: TokenClaims) => Promise<string> {
  const header = base64url({ alg: "EdDSA", kid: key.kid, typ: "JWT" });
  return (claims) => {
    const signingInput = `${header}.${base64url(claims)}`;
    return new Promise((resolve, reject) => {
      // Ed25519 takes no digest name: the algorithm hashes internally (PureEdDSA).
      sign(null, Buffer.from(signingInput), key.privateKey, (error, signature) => {
        if (error) reject(error);
        else resolve(`${signingInput}.${signature.toString("base64url")}`);
      });
    });
  };
}

function base64url(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}
