/**
 * Throttling of token requests per user (RFC 4226 §7.3): after a number of
 * refused requests in a row for one `user_id`, every request for it is
 * refused for a while, even with the right code; each further lockout lasts
 * twice as long (up to a day), and a granted request starts the count over.
 *
 * Every refusal counts, whatever its reason and whether or not the user
 * exists, so a lockout tells a caller nothing about which users exist or
 * which need MFA. Kept in memory (a restart ends every lockout), for at most
 * {@link MAX_TRACKED_USERS} user ids, the longest untouched forgotten first.
 */

/** User ids whose refusals are counted at once. */
export const MAX_TRACKED_USERS = 10_000;

/** Longest lockout, in seconds. */
export const MAX_LOCKOUT_SECONDS = 24 * 60 * 60;

/** What {@link createLockout} needs. */
export interface LockoutOptions {
  /** Refusals in a row that lock a user out. */
  maxFailedAttempts: number;
  /** Length of a user's first lockout. */
  lockoutSeconds: number;
}

/** The per-user count of refusals and the lockouts it led to. */
export interface Lockout {
  /** Seconds until `userId` may try again (rounded up), or 0 when it is not locked out. */
  lockedFor(userId: string, nowMs: number): number;
  /** Counts a refused request for `userId`. */
  refused(userId: string, nowMs: number): void;
  /** A granted request: the count starts over. */
  granted(userId: string): void;
}

interface Attempts {
  failures: number;
  lockouts: number;
  lockedUntilMs: number;
}

/** Builds the throttle. */
export function createLockout(options: LockoutOptions): Lockout {
  const byUser = new Map<string, Attempts>();

  /** Moves `userId` to the end of the map's order, so the first entry is always the longest untouched. */
  function touch(userId: string, attempts: Attempts): void {
    byUser.delete(userId);
    byUser.set(userId, attempts);
    if (byUser.size > MAX_TRACKED_USERS) byUser.delete(byUser.keys().next().value as string);
  }

  return {
    lockedFor(userId, nowMs) {
      const until = byUser.get(userId)?.lockedUntilMs ?? 0;
      return until > nowMs ? Math.ceil((until - nowMs) / 1000) : 0;
    },
    refused(userId, nowMs) {
      const attempts = byUser.get(userId) ?? { failures: 0, lockouts: 0, lockedUntilMs: 0 };
      attempts.failures += 1;
      if (attempts.failures >= options.maxFailedAttempts) {
        attempts.lockouts += 1;
        attempts.failures = 0;
        const seconds = Math.min(options.lockoutSeconds * 2 ** (attempts.lockouts - 1), MAX_LOCKOUT_SECONDS);
        attempts.lockedUntilMs = nowMs + seconds * 1000;
      }
      touch(userId, attempts);
    },
    granted(userId) {
      byUser.delete(userId);
    },
  };
}
