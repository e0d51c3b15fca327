import { createHash } from "node:crypto";
import { createReadStream, createWriteStream, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { pipeline } from "node:stream/promises";
import { PassThrough } from "node:stream";
import { createGunzip, createGzip } from "node:zlib";
import type { TenantQuota, TenantTier } from "../config.js";
import type { Db } from "../db/db.js";
import { BulkheadError, QuotaExceededError, TenantNotFoundError, ValidationError } from "../errors.js";
import { catalogueSql } from "../stores/catalogue-sql.js";
import type { VectorRecord, VectorStore } from "../stores/store.js";
import type { TenantRegistry } from "../tenancy/registry.js";
import { assertTenantId } from "../tenancy/tenant.js";
import { TEXT_FORMATS, type TextFormat } from "../text/chunker.js";
import { textSql } from "../text/text-sql.js";

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

/** A text document as a backup holds it; its chunks are `chunk` lines after all documents. */
interface TextDocumentLine {
  id: string;
  format: TextFormat;
  metadata: Record<string, unknown>;
  chunks: number;
  characters: number;
}

/** A chunk as a backup holds it, with its vector when it has one (a restore does not embed again). */
interface ChunkLine {
  documentId: string;
  position: number;
  section: string | null;
  body: string;
  metadata: Record<string, unknown>;
  embedding: number[] | null;
  /** The model that made `embedding` (a search compares only vectors of one model); null for a chunk embedded before models were recorded. */
  embeddingModel: string | null;
}

/** What a backup's trailer counts. */
interface BackupCounts {
  documents: number;
  textDocuments: number;
  textChunks: number;
}

export interface BackupSummary extends BackupCounts {
  file: string;
  tenantId: string;
  usageEvents: number;
  sha256: string;
}

export interface RestoreSummary extends BackupCounts {
  file: string;
  /** The backup's tenant. */
  from: string;
  /** The tenant restored into. */
  tenantId: string;
  /** Whether the restore registered the tenant (with the backup's name, tier and quota overrides). */
  created: boolean;
}

export const BACKUP_FORMAT = "bulkhead-tenant-backup";
/** Version 2 added text documents and their chunks; version 1 files (no text) still restore. */
export const BACKUP_VERSION = 2;
const READABLE_VERSIONS: readonly number[] = [1, BACKUP_VERSION];
const PAGE = 1_000;
/** Rows per insert statement of a restore (~1 MB of JSON at the default chunk size). */
const BATCH = 500;

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
  /** The text-search configuration chunks are indexed with (their full-text vectors are not backed up but rebuilt). */
  textSearchConfig: string;
}

/** Every row `read` pages through, a page at a time: bounded memory, each page a short read of its own. */
async function* paged<R>(read: (last: R | undefined) => Promise<R[]>): AsyncGenerator<R> {
  for (let last: R | undefined; ; ) {
    const page = await read(last);
    yield* page;
    if (page.length < PAGE) return;
    last = page.at(-1);
  }
}

/**
 * Writes one tenant's vectors, text documents and their chunks, metadata, settings and (optionally)
 * usage events to a gzip file of JSON lines: a header (format, version, tenant, dimension), the
 * records, and a trailer with the counts and a SHA-256 of everything before it. Streamed page by
 * page, so memory stays bounded whatever the tenant's size; each page is its own short read under
 * the tenant's own context, so other tenants are not held up.
 */
export function backupTenant(deps: Deps, tenantId: string, file: string, options: { includeUsage?: boolean; onProgress?: (documents: number) => void } = {}): Promise<BackupSummary> {
  return writeBackup(deps, tenantId, file, { ...options, vectors: true });
}

async function writeBackup(deps: Deps, tenantId: string, file: string, options: { includeUsage?: boolean; onProgress?: (documents: number) => void; vectors: boolean }): Promise<BackupSummary> {
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
  const counts: BackupCounts = { documents: 0, textDocuments: 0, textChunks: 0 };
  let usageEvents = 0;
  try {
    await line(header);
    for (let after: string | null = null; options.vectors; ) {
      // A move may switch the tenant's placement between two pages; the next page is read from the new one.
      const page = await deps.registry.withPlacement(tenant, (current) => ((tenant = current), deps.store.page(current.placement, after, PAGE)));
      for (const v of page) await line({ type: "doc", id: v.id, values: v.values, metadata: v.metadata });
      counts.documents += page.length;
      options.onProgress?.(counts.documents);
      if (page.length < PAGE) break;
      after = page.at(-1)!.id;
    }
    // Text lives in the home database whatever the tenant's store. Documents first, then chunks: a
    // restore inserts them in file order, and a chunk's document must exist before it.
    const documents = paged((last?: TextDocumentLine) => deps.db.queryAsTenant<TextDocumentLine>(tenantId, textSql.listDocuments, [tenantId, last?.id ?? null, PAGE]));
    for await (const d of documents) {
      await line({ type: "text", id: d.id, format: d.format, metadata: d.metadata, chunks: d.chunks, characters: d.characters });
      counts.textDocuments++;
    }
    type ChunkRow = { document_id: string; position: number; section: string | null; body: string; metadata: Record<string, unknown>; embedding: string | null; embedding_model: string | null };
    const chunks = paged((last?: ChunkRow) => deps.db.queryAsTenant<ChunkRow>(tenantId, textSql.pageChunks, [tenantId, last?.document_id ?? null, last?.position ?? null, PAGE]));
    for await (const c of chunks) {
      // pgvector's text form of a vector is a JSON array.
      await line({ type: "chunk", documentId: c.document_id, position: c.position, section: c.section, body: c.body, metadata: c.metadata, embedding: c.embedding === null ? null : JSON.parse(c.embedding), embeddingModel: c.embedding_model });
      counts.textChunks++;
    }
    if (options.includeUsage) {
      type UsageRow = { id: string; occurred_at: Date | string; period: string; kind: string; model: string | null; quantity: string; cost_pico: string };
      const rows = paged((last?: UsageRow) =>
        deps.db.queryAsTenant<UsageRow>(tenantId, "SELECT id, occurred_at, period, kind, model, quantity, cost_pico FROM usage_events WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3", [tenantId, Number(last?.id ?? 0), PAGE]),
      );
      for await (const r of rows) {
        await line({ type: "usage", at: new Date(r.occurred_at).toISOString(), period: r.period, kind: r.kind, model: r.model, quantity: Number(r.quantity), costPico: r.cost_pico });
        usageEvents++;
      }
    }
    const sha256 = hash.digest("hex");
    out.end(`${JSON.stringify({ type: "end", ...counts, usageEvents, sha256 })}\n`);
    await written;
    return { file, tenantId, ...counts, usageEvents, sha256 };
  } catch (err) {
    out.destroy(err as Error);
    await written.catch(() => {});
    throw err;
  }
}

type BackupItem = { header: BackupHeader } | { doc: VectorRecord } | { text: TextDocumentLine } | { chunk: ChunkLine } | { end: BackupCounts & { sha256: string } };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0;

/** Reads a backup file line by line, checking as it goes; throws `BackupInvalidError` on any inconsistency. */
async function* readBackup(file: string): AsyncGenerator<BackupItem> {
  const hash = createHash("sha256");
  const gunzip = createGunzip();
  const lines = createInterface({ input: createReadStream(file).on("error", (e) => gunzip.destroy(e)).pipe(gunzip), crlfDelay: Infinity });
  let header: BackupHeader | undefined;
  const counts: BackupCounts = { documents: 0, textDocuments: 0, textChunks: 0 };
  // What the documents say they are cut into, against the chunk lines that follow them.
  let chunksDeclared = 0;
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
        if (!READABLE_VERSIONS.includes(value.version as number)) throw new BackupInvalidError(file, `format version ${String(value.version)} is not supported (this Bulkhead reads versions ${READABLE_VERSIONS.join(" and ")})`);
        header = value as unknown as BackupHeader;
        hash.update(`${text}\n`);
        yield { header };
        continue;
      }
      if (value.type === "end") {
        const digest = hash.digest("hex");
        if (value.sha256 !== digest) throw new BackupInvalidError(file, "checksum mismatch (the file was changed or corrupted)");
        // A version 1 trailer counts no text (that version held none).
        for (const key of ["documents", "textDocuments", "textChunks"] as const) {
          const said = header.version < 2 && key !== "documents" ? (value[key] ?? 0) : value[key];
          if (said !== counts[key]) throw new BackupInvalidError(file, `the trailer counts ${String(said)} ${key}, the file holds ${counts[key]}`);
        }
        if (chunksDeclared !== counts.textChunks) throw new BackupInvalidError(file, `its text documents are cut into ${chunksDeclared} chunks, the file holds ${counts.textChunks}`);
        ended = true;
        yield { end: { ...counts, sha256: digest } };
        continue;
      }
      hash.update(`${text}\n`);
      if (value.type === "doc") {
        const values = value.values as unknown;
        if (typeof value.id !== "string" || !Array.isArray(values) || values.length !== header.dimension || !values.every((x) => typeof x === "number" && Number.isFinite(x))) {
          throw new BackupInvalidError(file, `document ${counts.documents + 1} is malformed or not ${header.dimension}-dimensional`);
        }
        counts.documents++;
        yield { doc: { id: value.id, values: values as number[], metadata: (value.metadata ?? {}) as Record<string, unknown> } };
      } else if (value.type === "text" || value.type === "chunk") {
        if (header.version < 2) throw new BackupInvalidError(file, `a version ${header.version} backup holds no text, yet this one does`);
        if (value.type === "text") {
          if (typeof value.id !== "string" || !TEXT_FORMATS.includes(value.format as TextFormat) || !isObject(value.metadata) || !isCount(value.chunks) || !isCount(value.characters)) {
            throw new BackupInvalidError(file, `text document ${counts.textDocuments + 1} is malformed`);
          }
          counts.textDocuments++;
          chunksDeclared += value.chunks;
          yield { text: { id: value.id, format: value.format as TextFormat, metadata: value.metadata, chunks: value.chunks, characters: value.characters } };
        } else {
          const e = value.embedding;
          if (
            typeof value.documentId !== "string" || !isCount(value.position) || (value.section !== null && typeof value.section !== "string") || typeof value.body !== "string" || !isObject(value.metadata) ||
            (e !== null && !(Array.isArray(e) && e.length > 0 && e.every((x) => typeof x === "number" && Number.isFinite(x)))) ||
            (value.embeddingModel !== undefined && value.embeddingModel !== null && !(typeof value.embeddingModel === "string" && value.embeddingModel.length <= 200 && !value.embeddingModel.includes("\u0000")))
          ) {
            throw new BackupInvalidError(file, `text chunk ${counts.textChunks + 1} is malformed`);
          }
          counts.textChunks++;
          yield { chunk: { documentId: value.documentId, position: value.position, section: value.section as string | null, body: value.body, metadata: value.metadata, embedding: e as number[] | null, embeddingModel: typeof value.embeddingModel === "string" ? value.embeddingModel : null } };
        }
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
 * counts, checksum), then the target's dimension and quotas (documents, text chunks); only then are
 * the tenant's text and vectors replaced, re-reading the file and re-checking its checksum as they
 * are written (all or nothing, see below). Restores into the backup's own tenant unless `into`
 * names another, whose metadata then names its new owner; a tenant that does not exist is
 * registered with the backup's name, tier and quota overrides. Running it twice gives the same
 * state. Usage events in the file are not restored (billing records are never rewritten). A
 * version 1 file (no text) restores vectors and leaves the tenant's text as it is.
 */
export async function restoreTenant(deps: Deps, file: string, options: { into?: string; onProgress?: (documents: number) => void } = {}): Promise<RestoreSummary> {
  let header: BackupHeader | undefined;
  let end: (BackupCounts & { sha256: string }) | undefined;
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
  const { quota } = tenant;
  const over =
    end!.documents > quota.maxDocuments
      ? new QuotaExceededError("maxDocuments", quota.maxDocuments, end!.documents, `the backup holds ${end!.documents} documents, over tenant "${target}"'s quota of ${quota.maxDocuments}: nothing was restored`)
      : end!.textChunks > quota.maxTextChunks
        ? new QuotaExceededError("maxTextChunks", quota.maxTextChunks, end!.textChunks, `the backup holds ${end!.textChunks} text chunks, over tenant "${target}"'s quota of ${quota.maxTextChunks}: nothing was restored`)
        : undefined;
  if (over) {
    if (created) await deps.registry.deleteTenant(target);
    throw over;
  }
  async function* batches(): AsyncGenerator<VectorRecord[]> {
    let batch: VectorRecord[] = [];
    let n = 0;
    for await (const item of readBackup(file)) {
      if (!("doc" in item)) continue;
      batch.push({ ...item.doc, metadata: { ...item.doc.metadata, tenant_id: target } });
      if (batch.length === BATCH) {
        yield batch;
        options.onProgress?.((n += batch.length));
        batch = [];
      }
    }
    yield batch;
    options.onProgress?.(n + batch.length);
  }
  // Text lives in the home database, vectors in the tenant's store (home, a cell or Pinecone): no
  // one transaction can hold both, and the embedded database's single connection cannot hold two
  // at once. So the text is replaced first, in a transaction of its own; if the vectors then fail,
  // the text the tenant had (saved beforehand, the same way a backup is written) is put back.
  // A version 1 file says nothing of text (that version did not carry it): the tenant's text is left as it is.
  const withText = header!.version >= 2;
  const undo = withText && !created ? mkdtempSync(join(tmpdir(), "bulkhead-restore-")) : undefined;
  const undoFile = undo && join(undo, "text.gz");
  try {
    if (undoFile) await writeBackup(deps, target, undoFile, { vectors: false });
    if (withText) await replaceText(deps, target, file);
    let documents: number;
    try {
      documents = await deps.registry.withPlacement(tenant, ({ placement }) => deps.store.replaceAll(placement, batches()));
    } catch (err) {
      if (undoFile) {
        await replaceText(deps, target, undoFile).catch((failed: unknown) => {
          throw new BulkheadError("RESTORE_INCOMPLETE", 500, `${file}: the vectors could not be restored (${(err as Error).message}) and putting tenant "${target}"'s own text back failed too (${(failed as Error).message}): it holds the backup's text and its own vectors; run the restore again`, { cause: err });
        });
      }
      throw err;
    }
    await deps.registry.ensureAnnIndex(await deps.registry.getTenant(target));
    return { file, from: header!.tenant.tenantId, tenantId: target, documents, textDocuments: end!.textDocuments, textChunks: end!.textChunks, created };
  } catch (err) {
    if (created) await deps.registry.deleteTenant(target).catch(() => {});
    throw err;
  } finally {
    if (undo) rmSync(undo, { recursive: true, force: true });
  }
}

/**
 * Replaces all of the tenant's text documents and chunks with the file's, in one transaction that
 * commits only after the whole file was re-read and its checksum matched again. Chunks keep their
 * vectors (no embedding provider is called); their full-text vectors are rebuilt with this
 * deployment's configuration. Every row's metadata names `tenantId`, its new owner.
 */
async function replaceText(deps: Deps, tenantId: string, file: string): Promise<void> {
  const owned = (metadata: Record<string, unknown>) => ({ ...metadata, tenant_id: tenantId });
  await deps.db.withTenant(tenantId, async (tx) => {
    // Serialised with the tenant's own writes (text ingests take the same lock).
    await tx.query(catalogueSql.lockTenantWrites, [tenantId]);
    await tx.query(textSql.deleteAllDocuments, [tenantId]);
    let documents: TextDocumentLine[] = [];
    let chunks: { document_id: string; position: number; section: string | null; body: string; metadata: Record<string, unknown>; embedding: string | null; embedding_model: string | null }[] = [];
    const flush = async () => {
      // Documents before chunks: the file holds every document before the first chunk.
      if (documents.length > 0) await tx.query(textSql.insertDocuments, [tenantId, JSON.stringify(documents)]);
      if (chunks.length > 0) await tx.query(textSql.insertChunks, [tenantId, JSON.stringify(chunks), deps.textSearchConfig, null]);
      documents = [];
      chunks = [];
    };
    for await (const item of readBackup(file)) {
      if ("text" in item) documents.push({ ...item.text, metadata: owned(item.text.metadata) });
      else if ("chunk" in item) {
        const c = item.chunk;
        // A vector whose model is not known could never be compared with a query's: it is left out (the chunk stays found by full text).
        const embedding = c.embedding && c.embeddingModel ? JSON.stringify(c.embedding) : null;
        chunks.push({ document_id: c.documentId, position: c.position, section: c.section, body: c.body, metadata: owned(c.metadata), embedding, embedding_model: embedding ? c.embeddingModel : null });
      } else continue;
      if (documents.length + chunks.length >= BATCH) await flush();
    }
    await flush();
  });
}
