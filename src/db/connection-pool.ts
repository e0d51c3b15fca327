import pg from "pg";
import { ClosedError } from "../errors.js";

/**
 * A deliberately small connection pool: an idle stack, a size cap and a FIFO of waiters.
 * Checkout of an idle connection is synchronous work — no timers, no events — which matters
 * when the whole tenant query is a single sub-millisecond round trip (pg-pool's checkout and
 * release measured ~0.03-0.05 ms here, a few percent of a small tenant's query).
 */
export class ConnectionPool {
  private readonly idle: pg.Client[] = [];
  private readonly waiters: { resolve: (c: pg.Client) => void; reject: (e: unknown) => void }[] = [];
  private readonly dead = new WeakSet<pg.Client>();
  private open = 0;
  private ended = false;

  constructor(
    private readonly config: pg.ClientConfig,
    private readonly max: number,
  ) {}

  /** An idle connection, a new one while under `max`, or the next one released. */
  async acquire(): Promise<pg.Client> {
    if (this.ended) throw new ClosedError("the connection pool");
    const idle = this.idle.pop();
    if (idle) return idle;
    if (this.open < this.max) return this.connect();
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
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

  async end(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    for (const w of this.waiters.splice(0)) w.reject(new ClosedError("the connection pool"));
    await Promise.all(this.idle.splice(0).map((c) => c.end().catch(() => {})));
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
    if (waiter && !this.ended) this.connect().then(waiter.resolve, waiter.reject);
  }
}
