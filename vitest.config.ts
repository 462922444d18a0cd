import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // Includes the fault suite (test/faults) in its bounded mode; `npm run test:faults` runs it in full with vitest.faults.config.ts.
    include: ["test/**/*.test.ts"],
    // Real Temporal, Kafka and Ray, started once per run (first run installs them).
    globalSetup: ["test/support/global-setup.ts"],
    hookTimeout: 180_000,
    testTimeout: 120_000,
    // Two cores: integration files run one after another, so one file's load never starves another's deadlines.
    fileParallelism: false,
  },
});
