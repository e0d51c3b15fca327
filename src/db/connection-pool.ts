import pg from "pg";
import { ClosedError } from "../errors.js";

/** No connection could be had within the caller's deadline (none free, or the server did not answer the connect). Nothing was sent. */
export class AcquireTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`no database connection within ${timeoutMs} ms`);
    this.name = "AcquireTimeoutError";
  }
}

interface Waiter {
  resolve: (c: pg.Client) => void;
  reject: (e: unknown) => void;
  /** Set when the waiter's deadline passed: a connection arriving later goes back to the pool. */
  gaveUp: boolean;
}

/**
 * A deliberately small connection pool: an idle stack, a size cap and a FIFO of waiters.
 * Checkout of an idle connection is synchronous work — no timers, no events — which matters
 * when the whole tenant query is a single sub-millisecond round trip (pg-pool's checkout and
 * release measured ~0.03-0.05 ms here, a few percent of a small tenant's query). Only a caller
 * that has to wait (for a free or a new connection) arms a timer for its deadline.
 */
export class ConnectionPool {
  private readonly idle: pg.Client[] = [];
  private readonly waiters: Waiter[] = [];
  private readonly dead = new WeakSet<pg.Client>();
  private open = 0;
  private ended = false;

  constructor(
    private readonly config: pg.ClientConfig,
    private readonly max: number,
  ) {}

  /** An idle connection, a new one while under `max`, or the next one released; `AcquireTimeoutError` after `timeoutMs`. */
  acquire(timeoutMs = Infinity): Promise<pg.Client> {
    if (this.ended) return Promise.reject(new ClosedError("the connection pool"));
    const idle = this.idle.pop();
    if (idle) return Promise.resolve(idle);
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const waiter: Waiter = {
        gaveUp: false,
        resolve: (c) => {
          clearTimeout(timer);
          resolve(c);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      if (Number.isFinite(timeoutMs)) {
        timer = setTimeout(() => {
          waiter.gaveUp = true;
          const i = this.waiters.indexOf(waiter);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(new AcquireTimeoutError(timeoutMs));
        }, timeoutMs);
      }
      if (this.open < this.max) this.connectFor(waiter);
      else this.waiters.push(waiter);
    });
  }

  /** Returns a connection; `broken` ones (or any after a socket error) are closed instead. */
  release(client: pg.Client, broken = false): void {
    if (broken || this.ended || this.dead.has(client)) {
      this.discard(client);
      return;
    }
    const waiter = this.waiters.shift();
    if (waiter) waiter.resolve(client);
    else this.idle.push(client);
  }

  /**
   * Cuts a connection whose statement overran its deadline: the socket is destroyed at once (a
   * server that does not answer would never complete a polite close), so whatever is in flight on
   * it fails, and the connection is never reused.
   */
  destroy(client: pg.Client): void {
    (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
    this.discard(client);
  }

  async end(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    for (const w of this.waiters.splice(0)) w.reject(new ClosedError("the connection pool"));
    await Promise.all(this.idle.splice(0).map((c) => c.end().catch(() => {})));
  }

  /** Opens a connection for a waiter; if the waiter gave up meanwhile, the connection goes to the pool. */
  private connectFor(waiter: Waiter): void {
    this.connect().then(
      (c) => (waiter.gaveUp ? this.release(c) : waiter.resolve(c)),
      (e) => {
        if (!waiter.gaveUp) waiter.reject(e);
      },
    );
  }

  private async connect(): Promise<pg.Client> {
    this.open++;
    const client = new pg.Client(this.config);
    // A socket error on an idle or busy connection must not crash the process; the connection is
    // marked dead and closed when next seen.
    client.on("error", () => {
      this.discard(client);
    });
    try {
      await client.connect();
      return client;
    } catch (err) {
      this.discard(client);
      throw err;
    }
  }

  private discard(client: pg.Client): void {
    if (this.dead.has(client)) return;
    this.dead.add(client);
    this.open--;
    const i = this.idle.indexOf(client);
    if (i >= 0) this.idle.splice(i, 1);
    client.end().catch(() => {});
    // Someone is waiting and there is room again: open a connection for them.
    const waiter = this.waiters.shift();
    if (waiter && !this.ended) this.connectFor(waiter);
  }
}
