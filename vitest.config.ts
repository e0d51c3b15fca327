import { defineConfig } from "vitest/config";
import LongestFirstSequencer from "./test/longest-first-sequencer.js";

/**
 * Three layers, each runnable alone (`npm run test:unit`, `test:conformance`, `test:system`):
 * - unit: pure modules, no database;
 * - conformance: the library against every backend and store (PGlite; the PostgreSQL server when
 *   configured; Pinecone through its local stand-in);
 * - system: the built binary and the HTTP service, end to end (dist/ built once first).
 */
const SYSTEM = ["test/cli.test.ts", "test/cli-operator.test.ts", "test/serve.test.ts", "test/kill-during-writes.test.ts", "test/http.test.ts", "test/api-fuzz.test.ts"];

export default defineConfig({
  test: {
    // PGlite boots a WebAssembly Postgres per suite; the server suites share one cluster.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    fileParallelism: true,
    // A worker keeps its loaded modules from one file to the next (no file patches globals, mocks
    // modules or fakes timers): a run spends ~15 % less CPU importing the sources again and again.
    isolate: false,
    // Worker threads, not forked processes: the same suites in ~15 % less CPU (measured, bench:test-suite).
    pool: "threads",
    maxWorkers: 2,
    // Both global setups (test/global-setup.ts) build dist/ once from the current sources and migrate
    // one in-memory database every PGlite open copies; the slowest files start first, whatever their project.
    sequence: { sequencer: LongestFirstSequencer },
    projects: [
      { extends: true, test: { name: "unit", include: ["src/**/*.test.ts"] } },
      { extends: true, test: { name: "conformance", include: ["test/**/*.test.ts"], exclude: SYSTEM, globalSetup: ["test/global-setup.ts"] } },
      { extends: true, test: { name: "system", include: SYSTEM, globalSetup: ["test/global-setup.ts"] } },
    ],
  },
});
