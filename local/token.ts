/**
 * `npm run token -- --tenant T --user U [--ttl SECONDS]`: prints a caller
 * token for the local stack's API started with `API_AUTH=jwt npm start`, for
 * any tenant and user, signed with the local identity service's key (see
 * caller-token.ts). Only the token goes to stdout, so
 * `TOKEN=$(npm run -s token -- --tenant tenant-demo --user user-demo)` works.
 */
import { parseArgs } from "node:util";
import { CALLER_TOKEN_TTL_SECONDS, identityServiceSigningKey, signCallerToken } from "./caller-token.js";
import { LOCAL_STATE_DIR, identityKeyDir } from "./state-dir.js";

/** The form of `tenant` and `user` in the API's contract (StartRequest). */
const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

function usage(problem: string): never {
  process.stderr.write(`${problem}\nusage: npm run token -- --tenant TENANT --user USER [--ttl SECONDS]\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { tenant: { type: "string" }, user: { type: "string" }, ttl: { type: "string" } },
    strict: true,
  });
  const { tenant, user } = values;
  if (tenant === undefined || !ID.test(tenant)) usage("--tenant is required: 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit");
  if (user === undefined || !ID.test(user)) usage("--user is required: 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit");
  const ttlSeconds = values.ttl === undefined ? CALLER_TOKEN_TTL_SECONDS : Number(values.ttl);
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) usage("--ttl must be a positive whole number of seconds");
  const key = identityServiceSigningKey(identityKeyDir(LOCAL_STATE_DIR));
  process.stdout.write(`${await signCallerToken(key, { tenant, user, ttlSeconds })}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`npm run token failed: ${(error as Error).message}\n`);
  process.exit(1);
});
