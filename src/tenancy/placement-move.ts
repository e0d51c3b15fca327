import { performance } from "node:perf_hooks";
import type { TenantTier } from "../config.js";
import type { Placement, VectorStore } from "../stores/store.js";

/** The catch-up hands over to the switch once a round re-copies fewer changed ids than this. */
const SWITCH_BELOW = 100;
const MAX_ROUNDS = 50;
/** Catch-up rounds in a row that would not finish within MAX_ROUNDS at their pace, before the tenant's writes are limited. */
const BEHIND_ROUNDS = 2;

/** Where a move is: copying the vectors, building the target's ANN index, re-copying what changed meanwhile. */
export type MovePhase = "copying" | "indexing" | "catching-up";

/** A tenant's move in progress, as recorded (it survives a crash of the process running it). */
export interface PlacementMove {
  tenantId: string;
  toTier: TenantTier;
  /** Store (cell) the tenant is moving to. */
  toStore: string;
  /** Index the tenant is moving to, and its namespace slot there (null for a dedicated index). */
  toIndex: string;
  toSlot: number | null;
  phase: MovePhase;
  /** Vectors copied so far, out of `total` (the count when the move began). */
  copied: number;
  total: number;
  /** Vectors per second the tenant may write meanwhile (see `TenantRegistry.limitMoveWrites`), or null. */
  writeLimit: number | null;
  startedAt: Date;
  updatedAt: Date;
}

/** Reported after every step of a move; `phase: "switched"` once, at the end. */
export interface MoveProgress {
  tenantId: string;
  phase: MovePhase | "switched";
  copied: number;
  total: number;
  /** Changed ids re-copied so far in the catch-up phase. */
  caughtUp: number;
  /** Set once the move has limited the tenant's writes to this many vectors per second. */
  writeLimit?: number;
}

export interface MoveOptions {
  onProgress?: (progress: MoveProgress) => void;
  /** Stops the move between two steps (it stays in progress: resume or roll it back later). */
  signal?: AbortSignal;
  /** Vectors per copy transaction (default 1,000). */
  batchSize?: number;
}

/** What the copy loop records after each step, so a resumed move starts where this one stopped. */
export interface MoveCheckpoint {
  phase: MovePhase;
  cursor: string | null;
  copied: number;
  targetIndexed: boolean;
}

/**
 * The online part of a move, run between the registry's begin (target created, writes start
 * logging the ids they touch) and its switch. Every step is its own short transaction, so the
 * tenant keeps reading and writing its current placement throughout:
 * 1. copy the vectors in id order, a page per transaction (idempotent: a crash re-copies one page);
 * 2. build the target's HNSW index once, in bulk, if the tenant has outgrown exact search;
 * 3. re-copy logged ids in rounds until a round is small — the switch applies the rest under its lock.
 */
export async function copyOnline(
  store: VectorStore,
  from: Placement,
  to: Placement,
  start: MoveCheckpoint & { total: number },
  hooks: {
    save: (checkpoint: MoveCheckpoint) => Promise<void>;
    annIndexThreshold: number;
    /** Limits the tenant's writes to this many vectors per second until the switch. */
    limitWrites: (vectorsPerSecond: number) => Promise<void>;
  },
  options: MoveOptions = {},
): Promise<{ targetIndexed: boolean }> {
  const batch = options.batchSize ?? 1_000;
  const state: MoveCheckpoint = { phase: start.phase, cursor: start.cursor, copied: start.copied, targetIndexed: start.targetIndexed };
  let caughtUp = 0;
  let writeLimit: number | undefined;
  const report = () =>
    options.onProgress?.({ tenantId: from.tenantId, phase: state.phase, copied: state.copied, total: Math.max(start.total, state.copied), caughtUp, ...(writeLimit ? { writeLimit } : {}) });
  const step = async () => {
    await hooks.save(state);
    report();
    options.signal?.throwIfAborted();
    // Embedded PGlite answers without I/O: without this the whole copy would run as one chain of
    // microtasks and starve the tenant's own requests until the move ends.
    await new Promise((resolve) => setImmediate(resolve));
  };

  report();
  while (state.phase === "copying") {
    options.signal?.throwIfAborted();
    const page = await store.copyPage(from, to, state.cursor, batch);
    if (page.lastId !== null) state.cursor = page.lastId;
    state.copied += page.copied;
    if (page.done) state.phase = "indexing";
    await step();
  }
  if (state.phase === "indexing") {
    if (!state.targetIndexed && (await store.count(to)) >= hooks.annIndexThreshold) {
      state.targetIndexed = await store.buildAnnIndex(to);
    }
    state.phase = "catching-up";
    await step();
  }
  // Each round re-copies what was written during the previous one; rounds shrink as long as the
  // move copies faster than the tenant writes. The switch applies the last few under its lock, so
  // stopping at a small round keeps the tenant's pause short (bounded by MAX_ROUNDS if it never gets small).
  // A tenant writing about as fast as the move copies (re-copying into a live HNSW graph goes no
  // faster than the tenant's own writes into it) keeps the log from shrinking, or shrinking fast
  // enough to be done within MAX_ROUNDS: after two such rounds in a row the tenant's writes are
  // limited to half the rate the rounds copied at — and lowered again after two more, since rounds
  // slow down as the target's graph grows (measured: a limit set at the first rounds' pace left a
  // log of 750 ids neither shrinking nor growing).
  const target = { ...to, annIndexed: state.targetIndexed };
  let backlog = await store.pendingChanges(from);
  let behind = 0;
  for (let round = 1; ; round++) {
    const started = performance.now();
    const n = await store.catchUp(from, target, batch);
    const seconds = (performance.now() - started) / 1000;
    caughtUp += n;
    report();
    options.signal?.throwIfAborted();
    await new Promise((resolve) => setImmediate(resolve));
    if (n < Math.min(batch, SWITCH_BELOW) || round === MAX_ROUNDS) break;
    const left = await store.pendingChanges(from);
    const gained = backlog - left;
    behind = gained <= 0 || left / gained > MAX_ROUNDS - round ? behind + 1 : 0;
    backlog = left;
    const limit = Math.max(1, Math.floor(n / Math.max(seconds, 0.001) / 2));
    if (behind >= BEHIND_ROUNDS && limit < (writeLimit ?? Infinity)) {
      writeLimit = limit;
      behind = 0;
      await hooks.limitWrites(writeLimit);
      report();
    }
  }
  return { targetIndexed: state.targetIndexed };
}
