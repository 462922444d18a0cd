import { createCipheriv, createDecipheriv, createSecretKey, randomBytes } from "node:crypto";
import type { Payload, PayloadCodec } from "@temporalio/common";
import { ValueError } from "@temporalio/common";
import proto from "@temporalio/proto";
import type { CodecKey } from "../config.js";

// @temporalio/proto is CommonJS without static named exports, so Node's ESM loader needs the default import.
const { api } = proto.temporal;

const ENCODING = "binary/encrypted";
const KEY_ID_METADATA = "encryption-key-id";
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** How the codec treats what it did not encrypt. */
export interface EncryptionCodecOptions {
  /**
   * Refuse to decode a payload that is not encrypted (the worker's setting).
   * Everything the API and the worker write goes through this codec, so a
   * plaintext payload reaching the worker was written by someone without the
   * key, e.g. a session started directly at the Temporal frontend with input
   * the API never validated. Temporal's headers and search attributes never
   * pass through codecs, so they are unaffected. Readers that only display
   * (the API's Get and Watch, the UI's codec endpoint) pass plaintext through.
   */
  refusePlaintext?: boolean;
}

/**
 * A Temporal payload codec that encrypts every payload with AES-256-GCM, so
 * prompts and tokens never sit in cleartext in Temporal's history or UI.
 * The first key encrypts; any listed key decrypts (matched by the key id kept
 * in the payload's metadata), so keys can rotate.
 *
 * `decode` throws `ValueError` for a payload encrypted with an unknown key or
 * whose authentication tag does not verify, and, with `refusePlaintext`, for
 * a payload that is not encrypted at all.
 */
export function createEncryptionCodec(keys: readonly CodecKey[], options: EncryptionCodecOptions = {}): PayloadCodec {
  const [first] = keys;
  if (!first) throw new Error("createEncryptionCodec needs at least one key");
  // Key objects made once: createCipheriv re-imports a raw key Buffer on every call (19 µs a payload against 7 µs).
  const active = { id: first.id, key: createSecretKey(first.key) };
  const byId = new Map(keys.map((k) => [k.id, createSecretKey(k.key)]));
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();

  return {
    async encode(payloads: Payload[]): Promise<Payload[]> {
      return payloads.map((payload) => {
        const iv = randomBytes(IV_BYTES);
        const cipher = createCipheriv("aes-256-gcm", active.key, iv);
        const plain = api.common.v1.Payload.encode(payload).finish();
        const data = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
        return {
          metadata: { encoding: encoder.encode(ENCODING), [KEY_ID_METADATA]: encoder.encode(active.id) },
          data,
        };
      });
    },

    async decode(payloads: Payload[]): Promise<Payload[]> {
      return payloads.map((payload) => {
        const encoding = payload.metadata?.encoding;
        if (!encoding || decoder.decode(encoding) !== ENCODING) {
          if (!options.refusePlaintext) return payload;
          const shown = encoding ? decoder.decode(encoding) : "none";
          throw new ValueError(
            `refusing an unencrypted payload (encoding ${JSON.stringify(shown)}): the worker takes only payloads encrypted with PAYLOAD_CODEC_KEYS, as the API writes them`,
          );
        }
        const keyIdBytes = payload.metadata?.[KEY_ID_METADATA];
        const keyId = keyIdBytes ? decoder.decode(keyIdBytes) : "";
        const key = byId.get(keyId);
        if (!key) throw new ValueError(`payload was encrypted with unknown key id "${keyId}"`);
        const data = Buffer.from(payload.data ?? new Uint8Array());
        if (data.length < IV_BYTES + TAG_BYTES) throw new ValueError("encrypted payload is truncated");
        const decipher = createDecipheriv("aes-256-gcm", key, data.subarray(0, IV_BYTES));
        decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
        const plain = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
        return api.common.v1.Payload.decode(plain) as Payload;
      });
    },
  };
}
