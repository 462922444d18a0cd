/** The one polling helper of the tests: wait for a condition real servers reach in their own time. */

/**
 * Polls `check` every 100 ms until it returns true; throws after `timeoutMs`
 * (default 30 s), naming `what` when given.
 */
export async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs?: number): Promise<void>;
export async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs?: number): Promise<void>;
export async function waitFor(
  ...args: [() => Promise<boolean> | boolean, number?] | [string, () => Promise<boolean> | boolean, number?]
): Promise<void> {
  const [what, check, timeoutMs = 30_000] = typeof args[0] === "string" ? (args as [string, () => Promise<boolean> | boolean, number?]) : ["condition", ...(args as [() => Promise<boolean> | boolean, number?])];
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
