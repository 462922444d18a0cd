/** The identity service's users file: who may get a token, for which tenants and capabilities. */
import { FieldError } from "../../shared/http/errors.js";
import {
  expectArray,
  expectBoolean,
  expectObject,
  expectOnlyKeys,
  expectString,
  expectStringArray,
  fieldPath,
} from "../request-fields.js";
import { base32Decode } from "./totp.js";

/** User ids, tenant ids and capability names, in the users file and in requests. */
export const ID_RULES = { maxLength: 128, pattern: /^[A-Za-z0-9][A-Za-z0-9@:._-]*$/, patternHint: "1-128 letters, digits, '@', ':', '.', '_' or '-'" };

/** One user as the service uses it. */
export interface User {
  userId: string;
  tenants: string[];
  capabilities: string[];
  active: boolean;
  /** The TOTP secret's bytes; MFA is required when set. */
  mfaSecret: Buffer | undefined;
}

/** RFC 4226 requires at least 128 bits of shared secret. */
const MIN_SECRET_BYTES = 16;

function parseUser(value: unknown, at: string): User {
  const record = expectObject(value, at);
  expectOnlyKeys(record, ["user_id", "tenants", "capabilities", "active", "mfa_secret"], at);
  let mfaSecret: Buffer | undefined;
  if (record.mfa_secret !== undefined) {
    const field = fieldPath(at, "mfa_secret");
    try {
      mfaSecret = base32Decode(expectString(record.mfa_secret, field));
    } catch (error) {
      if (error instanceof FieldError) throw error;
      throw new FieldError(field, "must be base32 (RFC 4648)");
    }
    if (mfaSecret.length < MIN_SECRET_BYTES) throw new FieldError(field, `must encode at least ${MIN_SECRET_BYTES} bytes`);
  }
  return {
    userId: expectString(record.user_id, fieldPath(at, "user_id"), ID_RULES),
    tenants: expectStringArray(record.tenants, fieldPath(at, "tenants"), ID_RULES),
    capabilities: expectStringArray(record.capabilities, fieldPath(at, "capabilities"), ID_RULES),
    active: expectBoolean(record.active, fieldPath(at, "active")),
    mfaSecret,
  };
}

/** Parses the users file `{description?, users: [...]}`; throws {@link FieldError} naming the field. */
export function parseUsersFile(value: unknown): Map<string, User> {
  const record = expectObject(value, "users file");
  expectOnlyKeys(record, ["description", "users"], "");
  expectString(record.description ?? "", "description", { maxLength: 10_000, allowEmpty: true });
  const users = new Map<string, User>();
  expectArray(record.users, "users", 10_000, parseUser).forEach((user, index) => {
    if (users.has(user.userId)) throw new FieldError(`users[${index}].user_id`, `repeats ${JSON.stringify(user.userId)}`);
    users.set(user.userId, user);
  });
  return users;
}
