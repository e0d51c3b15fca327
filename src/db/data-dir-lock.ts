import { closeSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { BulkheadError } from "../errors.js";

/** The lock file's name inside an embedded data directory. */
export const LOCK_FILE = "bulkhead.lock";

/** Who holds an embedded data directory, as written in its lock file. */
export interface LockHolder {
  pid: number;
  host: string;
  /** The holder's command line, so the operator knows which process to stop. */
  command: string;
  /** When the holder opened the directory (ISO 8601). */
  since: string;
  /** Linux: the kernel's boot id and the process's start time in ticks; they tell a live holder from a reused pid. */
  bootId?: string;
  procStart?: string;
  /** Unique per acquisition: a release removes the file only if it is still this one. */
  token: string;
}

/**
 * Another process has the embedded data directory open. PGlite has no locking of its own: two
 * processes on one directory each keep their own copy of the pages in memory and overwrite each
 * other's files, which is how a directory ends up unreadable ("Aborted()").
 */
export class DataDirLockedError extends BulkheadError {
  readonly holder: LockHolder;
  constructor(dir: string, holder: LockHolder, self: boolean) {
    const who = self ? "this process already has it open" : `held by pid ${holder.pid}${holder.host !== hostname() ? ` on host ${holder.host}` : ""} (${holder.command}) since ${holder.since}`;
    super(
      "DATA_DIR_LOCKED",
      503,
      `the embedded database at ${dir} is in use: ${who}. Only one process may open it at a time. ` +
        `Stop that process first, or go through the running service: add --url http://HOST:PORT and an admin key (--admin-key or BULKHEAD_ADMIN_KEY). ` +
        `If you are sure no process uses it, delete ${join(dir, LOCK_FILE)}.`,
    );
    this.holder = holder;
  }
}

/** Directories this process holds, so a second open in the same process is refused too. */
const heldHere = new Map<string, { token: string; release: () => void }>();
let exitHookInstalled = false;

function linuxIdentity(pid: number): { bootId?: string; procStart?: string } {
  try {
    const bootId = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
    // Field 22 of /proc/<pid>/stat (after the parenthesised command, which may contain spaces).
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const procStart = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
    return { bootId, procStart };
  } catch {
    return {};
  }
}

/** Whether the process that wrote `holder` still runs (a reused pid or a reboot does not count). */
function alive(holder: LockHolder): boolean {
  if (holder.host !== hostname()) return true; // cannot be checked from here: assume it runs
  // Our own pid with a token we do not hold: a previous process that had the same pid (a container's pid 1).
  if (holder.pid === process.pid) return [...heldHere.values()].some((h) => h.token === holder.token);
  try {
    process.kill(holder.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ESRCH") return false;
    // EPERM: it exists, as another user
  }
  if (holder.bootId && holder.procStart) {
    const now = linuxIdentity(holder.pid);
    if (now.bootId && now.bootId !== holder.bootId) return false; // rebooted since: the pid is someone else's
    if (now.procStart && now.procStart !== holder.procStart) return false; // the pid was reused
  }
  return true;
}

function readHolder(path: string): LockHolder | undefined {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as LockHolder;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    // Written but not yet filled in (its writer is between open and write), or garbage: treat as
    // held by an unknown live process only if it is fresh; the caller retries briefly.
    return { pid: -1, host: hostname(), command: "unknown (unreadable lock file)", since: "unknown", token: "" };
  }
}

/** An unreadable lock file older than this was left half-written by a killed process. */
const UNREADABLE_STALE_MS = 5_000;

/** A short synchronous pause (the lock is taken before anything async runs on the directory). */
const sleep = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

function ageMs(path: string): number {
  try {
    return Date.now() - statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

/** Creates `path` only if it does not exist (O_EXCL) and writes `content`; false if it exists. */
function createExclusive(path: string, content: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, "wx", 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  }
  try {
    writeSync(fd, content);
  } finally {
    closeSync(fd);
  }
  return true;
}

/** Removes `path` if it still holds `token` (a lock is never removed from under its new owner). */
function removeIfOurs(path: string, token: string): void {
  try {
    if (readHolder(path)?.token === token) unlinkSync(path);
  } catch {
    // already gone
  }
}

/**
 * Takes the embedded data directory `dir` for this process, or throws `DataDirLockedError` naming
 * the holder. The lock file is created atomically (O_EXCL), so of two processes starting at once
 * exactly one wins. A lock left by a process that no longer runs (killed, crashed, the machine
 * rebooted) is taken over; the takeover is serialised by a second O_EXCL file, so two starters
 * cannot both remove the stale lock and each believe they hold the directory. Returns the release
 * function, also run on process exit.
 */
export function acquireDataDirLock(dir: string): () => void {
  if (heldHere.has(dir)) throw new DataDirLockedError(dir, readHolder(join(dir, LOCK_FILE)) ?? { pid: process.pid, host: hostname(), command: "", since: "", token: "" }, true);
  const path = join(dir, LOCK_FILE);
  mkdirSync(dir, { recursive: true });
  const me: LockHolder = {
    pid: process.pid,
    host: hostname(),
    command: process.argv.slice(1).join(" ").slice(0, 300),
    since: new Date().toISOString(),
    ...linuxIdentity(process.pid),
    token: randomUUID(),
  };
  const content = `${JSON.stringify(me)}\n`;
  for (let attempt = 0; ; attempt++) {
    if (createExclusive(path, content)) break;
    const holder = readHolder(path);
    if (holder === undefined) continue; // released between our open and read: try again
    // Unreadable: a lock being written right now (its writer is between open and write), or one
    // whose writer was killed in between — stale once it is older than a moment.
    const unreadable = holder.pid === -1;
    if (!unreadable && alive(holder)) throw new DataDirLockedError(dir, holder, false);
    if (attempt >= 60) throw new DataDirLockedError(dir, holder, false); // a takeover that keeps failing: say so rather than spin
    if (unreadable && ageMs(path) <= UNREADABLE_STALE_MS) sleep(50);
    else takeOver(path, holder);
  }
  const release = () => {
    if (heldHere.get(dir)?.token !== me.token) return;
    heldHere.delete(dir);
    removeIfOurs(path, me.token);
  };
  heldHere.set(dir, { token: me.token, release });
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // Synchronous, so it runs on process.exit() and on a normal end alike (not on SIGKILL: the next opener takes the stale lock over).
    process.on("exit", () => [...heldHere.values()].forEach((h) => h.release()));
  }
  return release;
}

/** Removes a stale lock, under a guard file so only one process decides at a time. */
function takeOver(path: string, stale: LockHolder): void {
  const guard = `${path}.takeover`;
  const token = randomUUID();
  if (!createExclusive(guard, JSON.stringify({ pid: process.pid, host: hostname(), token }))) {
    // Another process is taking over; if it died doing so, clear its guard for the next attempt.
    const other = readHolder(guard);
    const dead = other && (other.pid === -1 ? ageMs(guard) > UNREADABLE_STALE_MS : !alive({ ...other, command: "", since: "" }));
    if (dead) removeIfOurs(guard, other.token);
    sleep(50);
    return;
  }
  try {
    // Re-read under the guard: remove it only if it is still the stale one we judged.
    if (readHolder(path)?.token === stale.token) unlinkSync(path);
  } finally {
    removeIfOurs(guard, token);
  }
}
