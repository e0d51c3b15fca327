import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { TestProject } from "vitest/node";
import { loadConfig } from "../src/config.js";
import { memoryImage, openDatabase } from "../src/db/open.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** A file holding the migrated in-memory database every test file's PGlite opens start from. */
    pgliteImage: string;
    /** A migrated, closed data directory that test data directories are copied from (`newDataDir`). */
    pgliteDataDir: string;
  }
}

const root = join(import.meta.dirname, "..");

/**
 * Builds dist/ from the current sources: the CLI, serve and kill tests run the built binary in
 * child processes, and testing a stale dist/ (from before the last change) passed or failed for
 * the wrong reasons.
 */
async function build(): Promise<void> {
  const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
  await promisify(execFile)(process.execPath, [tsc, "-p", join(root, "tsconfig.build.json")], { cwd: root }).catch((err: { stdout?: string }) => {
    throw new Error(`the build failed:\n${err.stdout ?? String(err)}`);
  });
}

/**
 * Creates and migrates one in-memory database for the whole run and writes its image to a file
 * the test files load (test/backends.ts): otherwise each file paid ~2 s for a database of its own.
 */
async function writeImage(dir: string): Promise<string> {
  const path = join(dir, "migrated.tar");
  writeFileSync(path, new Uint8Array(await (await memoryImage("bulkhead")).arrayBuffer()));
  return path;
}

/**
 * Creates and migrates one data directory for the whole run: a test that starts `bulkhead serve`
 * or a CLI command on a copy of it skips PGlite's initdb and the migrations (~2–3 s a directory).
 * Copies share the context secret, which no test depends on differing.
 */
async function writeDataDir(dir: string): Promise<string> {
  const path = join(dir, "migrated-data");
  await (await openDatabase(loadConfig({ env: {}, overrides: { databaseUrl: path } }), () => {})).close();
  return path;
}

/**
 * All three at once (tsc runs in a child process), and once for all the projects that name this setup
 * (vitest may load this module once per project: the work is kept on the global object).
 */
const shared = globalThis as { bulkheadTestSetup?: Promise<{ dir: string; image: string; dataDir: string }> };

export default async function setup(project: TestProject): Promise<() => void> {
  shared.bulkheadTestSetup ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), "bulkhead-test-"));
    const [, image, dataDir] = await Promise.all([build(), writeImage(dir), writeDataDir(dir)]);
    return { dir, image, dataDir };
  })();
  const { dir, image, dataDir } = await shared.bulkheadTestSetup;
  project.provide("pgliteImage", image);
  project.provide("pgliteDataDir", dataDir);
  return () => rmSync(dir, { recursive: true, force: true });
}
