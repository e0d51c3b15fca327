import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createBulkhead } from "../src/bulkhead.js";
import { acquireDataDirLock, DataDirLockedError, LOCK_FILE } from "../src/db/data-dir-lock.js";
import { newDataDir } from "./backends.js";

const dirs: string[] = [];
const newDir = () => {
  const d = mkdtempSync(join(tmpdir(), "bulkhead-lock-"));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A pid that is certainly not running: a child that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
  await new Promise((r) => child.once("exit", r));
  return child.pid!;
}

const holder = (pid: number, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ pid, host: hostname(), command: "bulkhead serve (a previous run)", since: "2026-01-01T00:00:00.000Z", token: "old", ...extra });

describe("embedded data directory lock (one process per directory)", () => {
  it("is created atomically with pid, command and start time, refuses a second holder, and is removed on release", () => {
    const dir = newDir();
    const release = acquireDataDirLock(dir);
    const lock = JSON.parse(readFileSync(join(dir, LOCK_FILE), "utf8"));
    expect(lock).toMatchObject({ pid: process.pid, host: hostname() });
    expect(new Date(lock.since).getTime()).toBeGreaterThan(Date.now() - 60_000);
    // A second open in the same process is refused too (two PGlite instances on one directory corrupt it).
    expect(() => acquireDataDirLock(dir)).toThrow(DataDirLockedError);
    release();
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
    acquireDataDirLock(dir)(); // free again
  });

  it("refuses a directory held by another live process, naming its pid and command and saying what to do", async () => {
    const dir = newDir();
    const other = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], { stdio: "ignore" });
    try {
      writeFileSync(join(dir, LOCK_FILE), holder(other.pid!));
      const err = (() => {
        try {
          acquireDataDirLock(dir);
        } catch (e) {
          return e as DataDirLockedError;
        }
      })();
      expect(err).toBeInstanceOf(DataDirLockedError);
      expect(err!.message).toContain(`pid ${other.pid}`);
      expect(err!.message).toContain("bulkhead serve (a previous run)");
      expect(err!.message).toContain("--url");
      expect(err!.status).toBe(503);
      expect(JSON.parse(readFileSync(join(dir, LOCK_FILE), "utf8")).pid).toBe(other.pid); // untouched
    } finally {
      other.kill("SIGKILL");
    }
  });

  it("takes over a stale lock: its process is gone, or its pid now belongs to another process", async () => {
    const dir = newDir();
    writeFileSync(join(dir, LOCK_FILE), holder(await deadPid()));
    const release = acquireDataDirLock(dir);
    expect(JSON.parse(readFileSync(join(dir, LOCK_FILE), "utf8")).pid).toBe(process.pid);
    release();

    // A live pid whose start time differs from the one recorded: the holder died and the pid was reused.
    if (existsSync("/proc/self/stat")) {
      const bootId = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
      writeFileSync(join(dir, LOCK_FILE), holder(process.ppid, { bootId, procStart: "1" }));
      acquireDataDirLock(dir)();
      // Our own pid from an earlier process (a container's pid 1 after a restart).
      writeFileSync(join(dir, LOCK_FILE), holder(process.pid, { token: "a previous incarnation" }));
      acquireDataDirLock(dir)();
    }
  });

  it("an empty lock file left by a process killed while writing it, and a takeover guard left by a dead process, are cleared", async () => {
    const dir = newDir();
    const lock = join(dir, LOCK_FILE);
    writeFileSync(lock, "");
    writeFileSync(`${lock}.takeover`, JSON.stringify({ pid: await deadPid(), host: hostname(), token: "t" }));
    // Fresh, it may be a lock being written right now: refused (after a moment), not taken.
    expect(() => acquireDataDirLock(dir)).toThrow(DataDirLockedError);
    const old = new Date(Date.now() - 60_000);
    utimesSync(lock, old, old);
    const release = acquireDataDirLock(dir);
    expect(JSON.parse(readFileSync(lock, "utf8")).pid).toBe(process.pid);
    expect(existsSync(`${lock}.takeover`)).toBe(false);
    release();
  });

  it("of several processes racing for a stale lock, exactly one gets the directory (built module, child processes)", async () => {
    const dir = newDir();
    writeFileSync(join(dir, LOCK_FILE), holder(await deadPid()));
    const module = join(import.meta.dirname, "..", "dist", "db", "data-dir-lock.js");
    const script = `import(${JSON.stringify(module)}).then((m) => { try { m.acquireDataDirLock(${JSON.stringify(dir)}); console.log("got"); setTimeout(() => {}, 5000); } catch (e) { console.log(e.code); } })`;
    const racers = Array.from({ length: 6 }, () => {
      const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit"] });
      let out = "";
      child.stdout.on("data", (d) => (out += d));
      return new Promise<string>((resolve) => child.on("exit", () => resolve(out.trim())));
    });
    const outcomes = await Promise.all(racers);
    expect(outcomes.filter((o) => o === "got")).toHaveLength(1);
    expect(outcomes.filter((o) => o === "DATA_DIR_LOCKED")).toHaveLength(5);
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false); // the winner released it on exit
  }, 60_000);

  it("release never removes a lock that is no longer its own", () => {
    const dir = newDir();
    const release = acquireDataDirLock(dir);
    writeFileSync(join(dir, LOCK_FILE), holder(process.ppid, { token: "someone else" }));
    release();
    expect(JSON.parse(readFileSync(join(dir, LOCK_FILE), "utf8")).token).toBe("someone else");
  });

  it("Bulkhead on a directory: a second open is refused before PGlite touches it; close lets it go", async () => {
    const dir = newDataDir("bulkhead-lock-");
    dirs.push(dir);
    const bh = await createBulkhead({ database: dir, env: {} });
    try {
      await expect(createBulkhead({ database: dir, env: {} })).rejects.toThrow(/is in use: this process already has it open/);
      await bh.registry.registerTenant("acme", "Acme", "free" as never);
    } finally {
      await bh.close();
    }
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
    const again = await createBulkhead({ database: dir, env: {} });
    try {
      expect((await again.registry.listTenants()).map((t) => t.tenantId)).toEqual(["acme"]);
    } finally {
      await again.close();
    }
  }, 60_000);
});
