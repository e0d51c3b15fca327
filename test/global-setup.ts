import { execFileSync } from "node:child_process";
import { join } from "node:path";

/**
 * Builds dist/ once before any suite runs: the CLI, serve and kill tests run the built binary in
 * child processes, and testing a stale dist/ (from before the last change) passed or failed for the
 * wrong reasons.
 */
export default function setup(): void {
  const root = join(import.meta.dirname, "..");
  execFileSync(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", join(root, "tsconfig.build.json")], { cwd: root, stdio: "inherit" });
}
