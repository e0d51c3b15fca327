import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    // dist/ built once from the current sources (the CLI and service tests run the built binary).
    globalSetup: ["test/global-setup.ts"],
    // PGlite boots a WebAssembly Postgres per suite; the server suites share one cluster.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    fileParallelism: true,
    maxWorkers: 2,
  },
});
