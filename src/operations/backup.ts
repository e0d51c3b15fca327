import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { pipeline } from "node:stream/promises";
import { PassThrough } from "node:stream";
import { createGunzip, createGzip } from "node:zlib";
import type { TenantQuota, TenantTier } from "../config.js";
import type { Db } from "../db/db.js";
import { BulkheadError, QuotaExceededError, TenantNotFoundError, ValidationError } from "../errors.js";
import type { VectorRecord, VectorStore } from "../stores/store.js";
import type { TenantRegistry } from "../tenancy/registry.js";
import { assertTenantId } from "../tenancy/tenant.js";

/** What a backup file starts with. */
export interface BackupHeader {
  format: typeof BACKUP_FORMAT;
  version: typeof BACKUP_VERSION;
  tenant: { tenantId: string; tenantName: string; tier: TenantTier; quotaOverrides: Partial<TenantQuota> };
  dimension: number;
  metric: string;
  createdAt: string;
  includesUsage: boolean;
}

export interface BackupSummary {
  file: string;
  tenantId: string;
  documents: number;
  usageEvents: number;
  sha256: string;
}

export interface RestoreSummary {
  file: string;
  /** The backup's tenant. */
  from: string;
  /** The tenant restored into. */
  tenantId: string;
  documents: number;
  /** Whether the restore registered the tenant (with the backup's name, tier and quota overrides). */
  created: boolean;
}

export const BACKUP_FORMAT = "bulkhead-tenant-backup";
export const BACKUP_VERSION = 1;
const PAGE = 1_000;

/** The backup file is unusable: wrong format, corrupted, truncated or inconsistent. Nothing was changed. */
export class BackupInvalidError extends BulkheadError {
  constructor(file: string, why: string) {
    super("BACKUP_INVALID", 400, `${file}: ${why}; nothing was restored`);
  }
}

interface Deps {
  db: Db;
  registry: TenantRegistry;
  store: VectorStore;
}

/**
 * Writes one tenant's vectors, metadata, settings and (optionally) usage events to a gzip file of
 * JSON lines: a header (format, version, tenant, dimension), the records, and a trailer with the
 * counts and a SHA-256 of everything before it. Streamed page by page, so memory stays bounded
 * whatever the tenant's size; each page is its own short read, so other tenants are not held up.
 */
export async function backupTenant(deps: Deps, tenantId: string, file: string, options: { includeUsage?: boolean; onProgress?: (documents: number) => void } = {}): Promise<BackupSummary> {
  let tenant = await deps.registry.getTenant(tenantId);
  const hash = createHash("sha256");
  const out = new PassThrough();
  const written = pipeline(out, createGzip(), createWriteStream(file));
  const line = async (value: unknown) => {
    const text = `${JSON.stringify(value)}\n`;
    hash.update(text);
    if (!out.write(text)) await once(out, "drain");
  };
  const header: BackupHeader = {
    format: BACKUP_FORMAT,
    version: BACKUP_VERSION,
    tenant: { tenantId, tenantName: tenant.tenantName, tier: tenant.tier, quotaOverrides: tenant.quotaOverrides },
    dimension: tenant.dimension,
    metric: tenant.metric,
    createdAt: new Date().toISOString(),
    includesUsage: options.includeUsage === true,
  };
  let documents = 0;
  let usageEvents = 0;
  try {
    await line(header);
    for (let after: string | null = null; ; ) {
      // A move may switch the tenant's placement between two pages; the next page is read from the new one.
      const page = await deps.registry.withPlacement(tenant, (current) => ((tenant = current), deps.store.page(current.placement, after, PAGE)));
      for (const v of page) await line({ type: "doc", id: v.id, values: v.values, metadata: v.metadata });
      documents += page.length;
      options.onProgress?.(documents);
      if (page.length < PAGE) break;
      after = page.at(-1)!.id;
    }
    if (options.includeUsage) {
      for (let after = 0; ; ) {
        const rows: { id: string; occurred_at: Date | string; period: string; kind: string; model: string | null; quantity: string; cost_pico: string }[] =
          await deps.db.queryAsTenant(tenantId, "SELECT id, occurred_at, period, kind, model, quantity, cost_pico FROM usage_events WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3", [tenantId, after, PAGE]);
        for (const r of rows) await line({ type: "usage", at: new Date(r.occurred_at).toISOString(), period: r.period, kind: r.kind, model: r.model, quantity: Number(r.quantity), costPico: r.cost_pico });
        usageEvents += rows.length;
        if (rows.length < PAGE) break;
        after = Number(rows.at(-1)!.id);
      }
    }
    const sha256 = hash.digest("hex");
    out.end(`${JSON.stringify({ type: "end", documents, usageEvents, sha256 })}\n`);
    await written;
    return { file, tenantId, documents, usageEvents, sha256 };
  } catch (err) {
    out.destroy(err as Error);
    await written.catch(() => {});
    throw err;
  }
}

/** Reads a backup file line by line, checking as it goes; throws `BackupInvalidError` on any inconsistency. */
async function* readBackup(file: string): AsyncGenerator<{ header: BackupHeader } | { doc: VectorRecord } | { end: { documents: number; sha256: string } }> {
  const hash = createHash("sha256");
  const gunzip = createGunzip();
  const lines = createInterface({ input: createReadStream(file).on("error", (e) => gunzip.destroy(e)).pipe(gunzip), crlfDelay: Infinity });
  let header: BackupHeader | undefined;
  let documents = 0;
  let ended = false;
  try {
    for await (const text of lines) {
      if (ended) throw new BackupInvalidError(file, "data after the trailer");
      let value: Record<string, unknown>;
      try {
        value = JSON.parse(text);
      } catch {
        throw new BackupInvalidError(file, "a line is not JSON (corrupted)");
      }
      if (!header) {
        if (value.format !== BACKUP_FORMAT) throw new BackupInvalidError(file, "not a Bulkhead tenant backup");
        if (value.version !== BACKUP_VERSION) throw new BackupInvalidError(file, `format version ${String(value.version)} is not supported (this Bulkhead reads version ${BACKUP_VERSION})`);
        header = value as unknown as BackupHeader;
        hash.update(`${text}\n`);
        yield { header };
        continue;
      }
      if (value.type === "end") {
        const digest = hash.digest("hex");
        if (value.sha256 !== digest) throw new BackupInvalidError(file, "checksum mismatch (the file was changed or corrupted)");
        if (value.documents !== documents) throw new BackupInvalidError(file, `the trailer counts ${String(value.documents)} documents, the file holds ${documents}`);
        ended = true;
        yield { end: { documents, sha256: digest } };
        continue;
      }
      hash.update(`${text}\n`);
      if (value.type === "doc") {
        const values = value.values as unknown;
        if (typeof value.id !== "string" || !Array.isArray(values) || values.length !== header.dimension || !values.every((x) => typeof x === "number" && Number.isFinite(x))) {
          throw new BackupInvalidError(file, `document ${documents + 1} is malformed or not ${header.dimension}-dimensional`);
        }
        documents++;
        yield { doc: { id: value.id, values: values as number[], metadata: (value.metadata ?? {}) as Record<string, unknown> } };
      }
    }
  } catch (err) {
    if (err instanceof BulkheadError) throw err;
    throw new BackupInvalidError(file, `unreadable (${(err as Error).message}): truncated or not gzip`);
  }
  if (!header) throw new BackupInvalidError(file, "empty");
  if (!ended) throw new BackupInvalidError(file, "no trailer (truncated)");
}

/**
 * Restores a tenant from a backup: the whole file is verified first (format, version, every record,
 * counts, checksum), then the target's dimension and quota; only then are the tenant's vectors
 * replaced in one transaction, re-reading the file and re-checking its checksum as they are
 * written (all or nothing). Restores into the backup's own tenant unless `into` names another;
 * a tenant that does not exist is registered with the backup's name, tier and quota overrides.
 * Running it twice gives the same state. Usage events in the file are not restored (billing
 * records are never rewritten).
 */
export async function restoreTenant(deps: Deps, file: string, options: { into?: string; onProgress?: (documents: number) => void } = {}): Promise<RestoreSummary> {
  let header: BackupHeader | undefined;
  let end: { documents: number; sha256: string } | undefined;
  for await (const item of readBackup(file)) {
    if ("header" in item) header = item.header;
    if ("end" in item) end = item.end;
  }
  const target = options.into ?? header!.tenant.tenantId;
  assertTenantId(target, "into");
  let tenant = await deps.registry.getTenant(target).catch((err) => {
    if (err instanceof TenantNotFoundError) return undefined;
    throw err;
  });
  if (tenant && tenant.dimension !== header!.dimension) {
    throw new ValidationError("dimension", `the backup holds ${header!.dimension}-dimensional vectors; tenant "${target}" stores ${tenant.dimension}: nothing was restored`);
  }
  let created = false;
  if (!tenant) {
    tenant = await deps.registry.registerTenant(target, header!.tenant.tenantName, header!.tenant.tier, { quota: header!.tenant.quotaOverrides, dimension: header!.dimension });
    created = true;
  }
  if (end!.documents > tenant.quota.maxDocuments) {
    if (created) await deps.registry.deleteTenant(target);
    throw new QuotaExceededError("maxDocuments", tenant.quota.maxDocuments, end!.documents, `the backup holds ${end!.documents} documents, over tenant "${target}"'s quota of ${tenant.quota.maxDocuments}: nothing was restored`);
  }
  async function* batches(): AsyncGenerator<VectorRecord[]> {
    let batch: VectorRecord[] = [];
    let n = 0;
    for await (const item of readBackup(file)) {
      if (!("doc" in item)) continue;
      batch.push({ ...item.doc, metadata: { ...item.doc.metadata, tenant_id: target } });
      if (batch.length === 500) {
        yield batch;
        options.onProgress?.((n += batch.length));
        batch = [];
      }
    }
    yield batch;
    options.onProgress?.(n + batch.length);
  }
  try {
    const documents = await deps.registry.withPlacement(tenant, ({ placement }) => deps.store.replaceAll(placement, batches()));
    await deps.registry.ensureAnnIndex(await deps.registry.getTenant(target));
    return { file, from: header!.tenant.tenantId, tenantId: target, documents, created };
  } catch (err) {
    if (created) await deps.registry.deleteTenant(target).catch(() => {});
    throw err;
  }
}
