import { describe, expect, it } from "vitest";
import { judgeServerVersion } from "./server-checks.js";

describe("PostgreSQL releases with row-level-security bugs", () => {
  it.each([
    [150013, false],
    [150014, true],
    [150020, true],
    [140018, false],
    [160009, false],
    [160010, true],
    [170005, false],
    [170006, true],
    [180000, true],
    [120022, false],
  ])("server_version_num %i → ok=%s", (num, ok) => {
    const verdict = judgeServerVersion(num);
    expect(verdict.ok).toBe(ok);
    if (!ok) expect(verdict.reason).toMatch(/upgrade to/);
  });
});
