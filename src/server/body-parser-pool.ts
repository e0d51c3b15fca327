import { Worker } from "node:worker_threads";
import { BulkheadError, ClosedError, ConcurrencyLimitError, ValidationError } from "../errors.js";
import type { BodyJob, BodyResult } from "./body-worker.js";
import type { OffloadedBody } from "./schemas.js";

/** Bodies at least this large go to a worker; smaller ones cost less to parse than to hand over. */
export const OFFLOAD_BYTES = 64 * 1024;

/** Large bodies one caller may have waiting or being parsed; more are refused (429) until one is done. */
export const MAX_BODIES_PER_CALLER = 2;

/** A body not parsed within this long means a stuck worker: it is replaced and the request refused (503). */
const DEADLINE_MS = 10_000;

/** The refusal of a body a worker failed on (it died, or answered with a failure): the caller may retry. */
const parseFailed = (how = "could not be parsed") => new BulkheadError("BODY_PARSE_FAILED", 503, `the request body ${how}; retry`);

interface Job {
  id: number;
  owner: string;
  bytes: Uint8Array;
  schema: OffloadedBody;
  resolve(body: unknown): void;
  reject(err: Error): void;
}

/**
 * Parses and validates large request bodies on worker threads, so that one tenant's batches (a
 * 1,000-vector upsert is ~8 MB of JSON: ~150 ms of parsing and validating) never hold the event
 * loop every other tenant's requests run on. Callers are served in turn — one body of each caller
 * waiting, then the next — and each may have at most MAX_BODIES_PER_CALLER bodies in the pool, so
 * a tenant sending batches as fast as it can waits for itself, not its neighbours.
 *
 * Workers start on the first large body and do not keep the process alive.
 */
export class BodyParserPool {
  private readonly idle: Worker[] = [];
  private readonly running = new Map<Worker, { job: Job; timer: NodeJS.Timeout }>();
  private readonly waiting = new Map<string, Job[]>();
  /** Callers with bodies waiting, in the order they came (see dispatch for who goes next). */
  private readonly turns: string[] = [];
  /** When each caller with bodies in the pool was last served (a count of bodies handed out). */
  private readonly lastServed = new Map<string, number>();
  private served = 0;
  /** Bodies per caller, waiting or being parsed. */
  private readonly held = new Map<string, number>();
  private workers = 0;
  private nextId = 0;
  private closed = false;

  constructor(private readonly size: number) {}

  /** The body validated against `schema`; refuses at once when `owner` already has its share in the pool. */
  parse(owner: string, bytes: Uint8Array, schema: OffloadedBody): Promise<unknown> {
    if (this.closed) return Promise.reject(new ClosedError("the HTTP service"));
    const held = this.held.get(owner) ?? 0;
    if (held >= MAX_BODIES_PER_CALLER) return Promise.reject(new ConcurrencyLimitError(owner, MAX_BODIES_PER_CALLER, "large request bodies being parsed"));
    this.held.set(owner, held + 1);
    return new Promise((resolve, reject) => {
      const job: Job = { id: this.nextId++, owner, bytes, schema, resolve, reject };
      const queue = this.waiting.get(owner);
      if (queue) queue.push(job);
      else {
        this.waiting.set(owner, [job]);
        this.turns.push(owner);
      }
      this.dispatch();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const queue of this.waiting.values()) for (const job of queue) job.reject(new ClosedError("the HTTP service"));
    this.waiting.clear();
    this.turns.length = 0;
    for (const worker of [...this.running.keys()]) this.retire(worker, new ClosedError("the HTTP service"));
    await Promise.all(this.idle.splice(0).map((w) => w.terminate()));
  }

  private dispatch(): void {
    while (this.turns.length > 0) {
      const worker = this.idle.pop() ?? (this.workers < this.size ? this.start() : undefined);
      if (!worker) return;
      // The caller served least recently goes next: one body of each caller in turn.
      let next = 0;
      for (let i = 1; i < this.turns.length; i++) if ((this.lastServed.get(this.turns[i]!) ?? -1) < (this.lastServed.get(this.turns[next]!) ?? -1)) next = i;
      const [owner] = this.turns.splice(next, 1) as [string];
      this.lastServed.set(owner, this.served++);
      const queue = this.waiting.get(owner)!;
      const job = queue.shift()!;
      if (queue.length > 0) this.turns.push(owner);
      else this.waiting.delete(owner);
      const timer = setTimeout(() => this.retire(worker, parseFailed("was not parsed in time")), DEADLINE_MS);
      this.running.set(worker, { job, timer });
      // Handed over without a copy when the bytes own their memory (a large body always does).
      const own = job.bytes.byteOffset === 0 && job.bytes.byteLength === job.bytes.buffer.byteLength;
      const bytes = own ? job.bytes : new Uint8Array(job.bytes);
      worker.postMessage({ id: job.id, bytes, schema: job.schema } satisfies BodyJob, [bytes.buffer as ArrayBuffer]);
    }
  }

  private start(): Worker {
    this.workers++;
    const worker = spawnWorker();
    worker.unref();
    worker.on("message", (result: BodyResult) => this.answered(worker, result));
    // A worker that dies (out of memory, a bug) fails only the body it held; the next one starts afresh.
    worker.on("error", () => this.retire(worker, parseFailed()));
    worker.on("exit", () => this.retire(worker, parseFailed()));
    return worker;
  }

  private answered(worker: Worker, result: BodyResult): void {
    const entry = this.running.get(worker);
    if (!entry || entry.job.id !== result.id) return;
    this.finish(worker, entry);
    this.idle.push(worker);
    if ("body" in result) entry.job.resolve(result.body);
    else if ("invalid" in result) entry.job.reject(new ValidationError(result.invalid.field, result.invalid.message));
    else entry.job.reject(parseFailed());
    this.dispatch();
  }

  /** Fails the worker's body (if any) and stops it; a new worker starts when one is needed. */
  private retire(worker: Worker, err: Error): void {
    const entry = this.running.get(worker);
    const at = this.idle.indexOf(worker);
    if (at >= 0) this.idle.splice(at, 1);
    else if (!entry) return; // already retired
    this.workers--;
    worker.removeAllListeners("exit");
    void worker.terminate();
    if (entry) {
      this.finish(worker, entry);
      entry.job.reject(err);
    }
    if (!this.closed) this.dispatch();
  }

  private finish(worker: Worker, entry: { job: Job; timer: NodeJS.Timeout }): void {
    clearTimeout(entry.timer);
    this.running.delete(worker);
    const held = (this.held.get(entry.job.owner) ?? 1) - 1;
    if (held > 0) this.held.set(entry.job.owner, held);
    else {
      this.held.delete(entry.job.owner);
      this.lastServed.delete(entry.job.owner);
    }
  }
}

/**
 * The built worker (dist/server/body-worker.js); run from the TypeScript sources (the tests), the
 * worker registers tsx first so that it can load them too.
 */
function spawnWorker(): Worker {
  const fromSources = import.meta.url.endsWith(".ts");
  const file = new URL(fromSources ? "./body-worker.ts" : "./body-worker.js", import.meta.url);
  if (!fromSources) return new Worker(file);
  return new Worker(`import("tsx/esm/api").then((tsx) => { tsx.register(); return import(${JSON.stringify(file.href)}); })`, { eval: true });
}
