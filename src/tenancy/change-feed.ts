import pg from "pg";

/** What the feed reports to the registry. */
export interface ChangeFeedHandlers {
  /** Another instance (or this one) committed a change to this tenant. */
  changed(tenantId: string): void;
  /** Notifications may be missed from now on: stop trusting cached tenants. */
  lost(): void;
  /** Listening again; anything may have changed meanwhile. */
  restored(): void;
}

/** The NOTIFY channel tenant changes are announced on, one per schema. */
export const changeChannel = (schema: string) => `bulkhead_tenants_${schema}`;

const MAX_RETRY_MS = 5_000;

/** How the feed's connection shows in `pg_stat_activity`. */
export const FEED_APPLICATION_NAME = "bulkhead-change-feed";

/**
 * Listens (PostgreSQL LISTEN/NOTIFY, on a connection of its own) for tenant changes committed by any
 * instance sharing the database, so a suspension or quota change takes effect everywhere as soon as
 * it commits — not when a cache entry expires. If the connection drops, the registry is told to stop
 * caching until the feed reconnects (with backoff up to 5 s).
 */
export class TenantChangeFeed {
  private client: pg.Client | undefined;
  private closed = false;
  private retryMs = 100;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly url: string,
    private readonly channel: string,
    private readonly handlers: ChangeFeedHandlers,
    private readonly warn: (message: string) => void,
  ) {}

  /** Connects and starts listening; rejects if the first connection fails. */
  async start(): Promise<void> {
    await this.connect();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => {});
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url, application_name: FEED_APPLICATION_NAME });
    client.on("notification", (m) => {
      if (m.channel === this.channel && m.payload) this.handlers.changed(m.payload);
    });
    client.on("error", () => this.drop(client));
    client.on("end", () => this.drop(client));
    try {
      await client.connect();
      await client.query(`LISTEN "${this.channel}"`);
    } catch (err) {
      client.end().catch(() => {});
      throw err;
    }
    if (this.closed) {
      await client.end().catch(() => {});
      return;
    }
    this.client = client;
  }

  private drop(client: pg.Client): void {
    if (this.client !== client) return;
    this.client = undefined;
    client.end().catch(() => {});
    if (this.closed) return;
    this.handlers.lost();
    this.warn("bulkhead: lost the tenant change feed (LISTEN connection); tenant lookups bypass the cache until it is back");
    this.reconnect();
  }

  private reconnect(): void {
    this.timer = setTimeout(() => {
      this.connect().then(
        () => {
          if (this.closed) return;
          this.retryMs = 100;
          this.handlers.restored();
          this.warn("bulkhead: tenant change feed restored; tenant cache re-enabled");
        },
        () => {
          this.retryMs = Math.min(this.retryMs * 2, MAX_RETRY_MS);
          if (!this.closed) this.reconnect();
        },
      );
    }, this.retryMs);
    this.timer.unref();
  }
}
