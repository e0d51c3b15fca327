import { relative } from "node:path";
import { BaseSequencer, type TestSpecification } from "vitest/node";

/**
 * Starts the slowest test files first, whatever their project. Vitest's own order runs the projects
 * one after another by name, so the run ended with the system suite's two longest files alone on
 * the two workers. Durations come from vitest's cache of the last run; on a clean checkout (CI) the
 * system files, which start child processes, go first, then the larger files.
 */
export default class LongestFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const cache = this.ctx.cache;
    const weight = (spec: TestSpecification) => {
      const key = `${spec.project.name}:${relative(this.ctx.config.root, spec.moduleId)}`;
      const last = cache.getFileTestResults(key);
      if (last && !last.failed) return last.duration;
      if (last?.failed) return Number.MAX_SAFE_INTEGER; // failed last time: know soon
      return (spec.project.name === "system" ? 1e9 : 0) + (cache.getFileStats(key)?.size ?? 0);
    };
    return [...files].sort((a, b) => weight(b) - weight(a));
  }
}
