import { randomUUID } from "node:crypto";
import type { Db } from "../db/db.js";
import { BulkheadError, ConcurrencyLimitError, JobNotFoundError, ValidationError } from "../errors.js";
import type { TenantRegistry } from "../tenancy/registry.js";
import type { TenantTextManager, TextDocumentInput } from "./text-manager.js";

/** A background ingest as the tenant sees it. */
export interface TextJob {
  jobId: string;
  status: "running" | "done" | "failed";
  documents: number;
  /** Documents stored so far. */
  done: number;
  chunks: number;
  /** Why it failed (the refusal's message: a quota, a provider, a bad document), or null. */
  error: string | null;
  createdAt: Date;
  updatedAt: Date;
}

/** Most documents one job takes (the HTTP body limit bounds it too), and how many are stored per step. */
export const JOB_LIMITS = Object.freeze({ documentsPerJob: 2_000, documentsPerStep: 20, runningPerTenant: 2 });

const sql = {
  insert: "INSERT INTO text_jobs (tenant_id, id, status, documents) VALUES ($1, $2, 'running', $3)",
  progress: "UPDATE text_jobs SET done = $3, chunks = $4, updated_at = now() WHERE tenant_id = $1 AND id = $2",
  finish: "UPDATE text_jobs SET status = $3, error = $4, updated_at = now() WHERE tenant_id = $1 AND id = $2",
  get: "SELECT id, status, documents, done, chunks, error, created_at, updated_at FROM text_jobs WHERE tenant_id = $1 AND id = $2",
};

type Row = { id: string; status: TextJob["status"]; documents: number; done: number; chunks: number; error: string | null; created_at: Date | string; updated_at: Date | string };

/**
 * Large text ingests, run in the background: the caller gets a job id at once and follows its
 * progress. The documents are stored a step at a time through `ingestDocuments` (each step all or
 * nothing, each document replaced whole; the tenant's rate limit, quotas and metering apply to
 * every step), so a job that fails half-way — a quota reached, a provider down — keeps the steps
 * before and says where it stopped. A tenant runs at most two at once. Job status is tenant data:
 * read in the tenant's context, so another tenant's job id is simply not found.
 */
export class TextJobs {
  private readonly running = new Map<string, Promise<void>>();
  private closing = false;

  constructor(
    private readonly registry: TenantRegistry,
    private readonly db: Db,
    private readonly text: TenantTextManager,
    /** Where a job's unexpected failure is logged (ids only). */
    private readonly warn: (message: string) => void,
  ) {}

  /** Starts storing `documents` in the background; answers with the job as begun. */
  async start(tenantId: string, documents: TextDocumentInput[]): Promise<TextJob> {
    const tenant = await this.registry.resolveActive(tenantId);
    // All of them before the first step: a bad document must not leave the ones before it stored.
    this.text.validateDocuments(documents, tenant.tenantId, JOB_LIMITS.documentsPerJob);
    const mine = [...this.running.keys()].filter((k) => k.startsWith(`${tenant.tenantId}/`)).length;
    if (mine >= JOB_LIMITS.runningPerTenant) throw new ConcurrencyLimitError(tenant.tenantId, JOB_LIMITS.runningPerTenant, "ingest jobs running");
    const jobId = randomUUID();
    await this.db.queryAsTenant(tenant.tenantId, sql.insert, [tenant.tenantId, jobId, documents.length]);
    const key = `${tenant.tenantId}/${jobId}`;
    const run = this.run(tenant.tenantId, jobId, documents).finally(() => this.running.delete(key));
    this.running.set(key, run);
    return this.get(tenant.tenantId, jobId);
  }

  /** The job's status; `JobNotFoundError` (404) for an id the tenant has no job under. */
  async get(tenantId: string, jobId: string): Promise<TextJob> {
    const tenant = await this.registry.resolveActive(tenantId);
    if (typeof jobId !== "string" || !/^[0-9a-f-]{36}$/.test(jobId)) throw new JobNotFoundError(String(jobId).slice(0, 64));
    const [row] = await this.db.queryAsTenant<Row>(tenant.tenantId, sql.get, [tenant.tenantId, jobId]);
    if (!row) throw new JobNotFoundError(jobId);
    return { jobId: row.id, status: row.status, documents: row.documents, done: row.done, chunks: row.chunks, error: row.error, createdAt: new Date(row.created_at), updatedAt: new Date(row.updated_at) };
  }

  /** Stops taking steps; a job still running is marked failed ("stopped"), its stored steps kept. */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.allSettled(this.running.values());
  }

  private async run(tenantId: string, jobId: string, documents: TextDocumentInput[]): Promise<void> {
    let done = 0;
    let chunks = 0;
    try {
      for (let i = 0; i < documents.length; i += JOB_LIMITS.documentsPerStep) {
        if (this.closing) throw new BulkheadError("STOPPED", 503, `the service stopped after ${done} of ${documents.length} documents; send the rest again`);
        const step = await this.text.ingestDocuments(tenantId, documents.slice(i, i + JOB_LIMITS.documentsPerStep));
        done += step.documents;
        chunks += step.chunks;
        await this.db.queryAsTenant(tenantId, sql.progress, [tenantId, jobId, done, chunks]);
      }
      await this.db.queryAsTenant(tenantId, sql.finish, [tenantId, jobId, "done", null]);
    } catch (err) {
      // A refusal names its field relative to the step: say which document it was.
      const why = err instanceof ValidationError ? `documents[${done + Number(/^documents\[(\d+)\]/.exec(err.field)?.[1] ?? 0)}]: ${err.reason}` : err instanceof BulkheadError ? err.message : "an internal error stopped the job; it has been logged";
      if (!(err instanceof BulkheadError)) this.warn(`bulkhead: text ingest job ${jobId} of tenant ${tenantId} failed: ${(err as Error).name}`);
      await this.db.queryAsTenant(tenantId, sql.finish, [tenantId, jobId, "failed", why.slice(0, 1000)]).catch(() => undefined);
    }
  }
}
