import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { TestProject } from "vitest/node";
import { memoryImage } from "../src/db/open.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** A file holding the migrated in-memory database every test file's PGlite opens start from. */
    pgliteImage: string;
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
 * Both at once (tsc runs in a child process), and once for all the projects that name this setup
 * (vitest may load this module once per project: the work is kept on the global object).
 */
const shared = globalThis as { bulkheadTestSetup?: Promise<{ dir: string; image: string }> };

export default async function setup(project: TestProject): Promise<() => void> {
  shared.bulkheadTestSetup ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), "bulkhead-test-"));
    const [, image] = await Promise.all([build(), writeImage(dir)]);
    return { dir, image };
  })();
  const { dir, image } = await shared.bulkheadTestSetup;
  project.provide("pgliteImage", image);
  return () => rmSync(dir, { recursive: true, force: true });
}
