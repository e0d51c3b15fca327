import { HOME_STORE, PINECONE_DEFAULTS, type BulkheadConfig } from "../config.js";
import type { Db } from "../db/db.js";
import { openDatabase } from "../db/open.js";
import { ConfigError } from "../errors.js";
import { claimStoreIdentity, PgvectorCell } from "./pgvector/pgvector-cell.js";
import { PgvectorStore } from "./pgvector/pgvector-store.js";
import type { PineconeSettings } from "./pinecone/pinecone-store.js";
import type { RemoteStore } from "./store.js";

export type { PineconeSettings };
import { StoreRouter } from "./store-router.js";

/** What a store factory gets: the home database (whose catalogue fences remote stores), the configuration and the log. */
export interface StoreContext {
  home: Db;
  config: BulkheadConfig;
  warn: (message: string) => void;
}

/** Builds a remote store for `createBulkhead({ stores })`. */
export type StoreFactory = (name: string, context: StoreContext) => RemoteStore | Promise<RemoteStore>;

/**
 * Pinecone as a store, for `createBulkhead({ stores: { pc: pinecone({ apiKey, cloud, region }) } })`.
 * `BULKHEAD_PINECONE` and `PINECONE_API_KEY` configure the same thing from the environment.
 */
export function pinecone(settings: Pick<PineconeSettings, "apiKey"> & Partial<PineconeSettings>): StoreFactory {
  return async (name, { home, config, warn }) => {
    // Loaded only when a Pinecone store is configured: the SDK is a third of the CLI's start-up.
    const { PineconeStore } = await import("./pinecone/pinecone-store.js");
    return new PineconeStore(name, { ...PINECONE_DEFAULTS, ...settings }, home.dataPlane, home.withTimeout(config.dbLongTimeoutMs), warn);
  };
}

/** The deployment's stores: pgvector at home, the configured cells (opened and migrated) and remote stores. */
export async function openStores(home: Db, config: BulkheadConfig, warn: (message: string) => void, factories: Readonly<Record<string, StoreFactory>> = {}): Promise<{ router: StoreRouter; cells: PgvectorCell[] }> {
  await claimStoreIdentity(home, HOME_STORE);
  const all = { ...factories };
  if (config.pinecone) {
    if (!config.pineconeApiKey) throw new ConfigError("BULKHEAD_PINECONE is set but PINECONE_API_KEY is not: set the project's API key");
    all[config.pinecone.name] ??= pinecone({ ...config.pinecone, apiKey: config.pineconeApiKey });
  }
  const cells = await openCells(config, warn);
  const remotes = new Map<string, RemoteStore>();
  for (const [name, factory] of Object.entries(all)) {
    if (name === HOME_STORE || config.cells[name]) throw new ConfigError(`store name ${JSON.stringify(name)} is taken (home or a cell): name the store something else`);
    remotes.set(name, await factory(name, { home, config, warn }));
  }
  const router = new StoreRouter(new PgvectorStore(home, home.dataPlane, config, warn), new Map(cells.map((c) => [c.name, c])), remotes);
  for (const [tier, store] of Object.entries(config.tierStores)) {
    if (!router.storeNames().includes(store)) throw new ConfigError(`BULKHEAD_TIER_STORES: tier ${tier} names store ${JSON.stringify(store)}, which is not configured (stores: ${router.storeNames().join(", ")})`);
  }
  return { router, cells };
}

/** Opens (and migrates) every configured cell: a database like the home one, under the same schema. */
async function openCells(config: BulkheadConfig, warn: (message: string) => void): Promise<PgvectorCell[]> {
  const cells: PgvectorCell[] = [];
  try {
    for (const [name, cell] of Object.entries(config.cells)) {
      const cellConfig = { ...config, databaseUrl: cell.url, databaseOwnerUrl: cell.ownerUrl, databaseDataUrl: cell.dataUrl };
      const db = await openDatabase(cellConfig, warn).catch((err: Error) => {
        throw Object.assign(err, { message: `cell ${name}: ${err.message}` });
      });
      cells.push(new PgvectorCell(name, db, new PgvectorStore(db, db.dataPlane, config, warn)));
      await claimStoreIdentity(db, name);
    }
    return cells;
  } catch (err) {
    for (const c of cells) await c.db.close();
    throw err;
  }
}
