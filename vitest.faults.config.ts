import { defineConfig } from "vitest/config";

/**
 * `npm run test:faults`: the fault suite alone, in full. It starts and kills a
 * stack of its own, so the run's shared infrastructure (global setup) is not started.
 */
export default defineConfig({
  test: {
    include: ["test/faults/**/*.test.ts"],
    hookTimeout: 600_000,
    testTimeout: 1_200_000,
  },
});
