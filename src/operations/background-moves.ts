import { MoveConflictError, MoveNotFoundError, TenantNotFoundError } from "../errors.js";
import { describeError } from "../monitoring/safe-error.js";
import type { AuditLog } from "../tenancy/audit-log.js";
import type { PlacementMove } from "../tenancy/placement-move.js";
import type { MoveTarget, TenantRegistry } from "../tenancy/registry.js";
import type { Tenant } from "../tenancy/tenant.js";

/** A recorded move as the service shows it: what this instance knows of it added. */
export interface MoveStatus extends PlacementMove {
  /** Copied share, 0–100. */
  percent: number;
  /** The move is running in this service instance now. */
  running: boolean;
  /** Why its last run in this instance stopped, if it failed (the move stays recorded: resume or roll back). */
  error: string | null;
}

interface Run {
  stop: AbortController;
  done: Promise<void>;
}

/**
 * Tenant moves run by the HTTP service in the background. A move of 100,000 vectors takes minutes
 * (docs/benchmarks.md): far longer than a client or proxy waits for an answer, so the admin API
 * starts it, answers 202, and shows its progress from the move's own record. Stopping the service
 * stops its moves between two steps; they stay recorded, and `resume` continues them (here, in
 * another instance, or with the CLI). Two instances resuming the same move both copy (copies are
 * idempotent) and the second's switch is refused, so nothing here needs to be shared.
 */
export class BackgroundMoves {
  private readonly runs = new Map<string, Run>();
  private readonly failures = new Map<string, string>();

  constructor(
    private readonly registry: TenantRegistry,
    private readonly audit: AuditLog,
    /** Where a failed run is reported (the service log). */
    private readonly onFailure: (tenantId: string, err: unknown) => void,
  ) {}

  /**
   * Begins a move (refused at once if the target is wrong or the tenant already moves) and runs it.
   * Every step is audited as done by `actor`: begun, resumed, rolled back, switched.
   */
  async start(tenantId: string, target: MoveTarget, actor: string, batchSize?: number): Promise<MoveStatus> {
    const move = await this.registry.beginMove(tenantId, target);
    await this.audit.record(actor, "tenant.move.start", tenantId, { tier: target.tier ?? null, index: target.index ?? null, store: target.store ?? null });
    this.run(tenantId, actor, batchSize);
    return this.describe(move); // as begun: a small tenant's move may have switched already
  }

  /** Continues a recorded move (interrupted, failed, or left by a stopped instance). */
  async resume(tenantId: string, actor: string, batchSize?: number): Promise<MoveStatus> {
    if (this.runs.has(tenantId)) throw new MoveConflictError(tenantId, `the move of "${tenantId}" is already running`);
    const move = await this.status(tenantId); // refuses a tenant with no move in progress
    await this.audit.record(actor, "tenant.move.resume", tenantId);
    this.run(tenantId, actor, batchSize);
    return { ...move, running: true, error: null };
  }

  /** Stops the move if it runs here, then discards its copy: the tenant stays where it is. */
  async rollback(tenantId: string, actor: string): Promise<Tenant> {
    await this.stop(tenantId);
    const tenant = await this.registry.rollbackMove(tenantId);
    this.failures.delete(tenantId);
    await this.audit.record(actor, "tenant.move.rollback", tenantId);
    return tenant;
  }

  /** The tenant's move in progress; `MoveNotFoundError` (404) when there is none. */
  async status(tenantId: string): Promise<MoveStatus> {
    const move = await this.registry.getMove(tenantId);
    if (!move) throw new MoveNotFoundError(tenantId);
    return this.describe(move);
  }

  /** Every recorded move. */
  async list(): Promise<MoveStatus[]> {
    return (await this.registry.listMoves()).map((m) => this.describe(m));
  }

  /** Stops every move running here between two steps and waits for them (they stay resumable). */
  async close(): Promise<void> {
    await Promise.all([...this.runs.keys()].map((id) => this.stop(id)));
  }

  private async tenantExists(tenantId: string): Promise<boolean> {
    try {
      await this.registry.getTenant(tenantId);
      return true;
    } catch (err) {
      if (err instanceof TenantNotFoundError) return false;
      return true; // cannot tell (the database is away): report the failure as it is
    }
  }

  private run(tenantId: string, actor: string, batchSize?: number): void {
    const stop = new AbortController();
    this.failures.delete(tenantId);
    const done = this.registry
      .resumeMove(tenantId, { signal: stop.signal, batchSize })
      .then(async (t) => {
        await this.audit.record(actor, "tenant.move", tenantId, { tier: t.tier, store: t.store, index: t.index });
      })
      .catch(async (err: unknown) => {
        if (stop.signal.aborted) return; // stopped on purpose: stays recorded, resumable
        // The tenant was erased while its move ran (erasure takes the move and its copy with it):
        // nothing is left to resume or roll back, so there is no failure to report.
        if (!(await this.tenantExists(tenantId))) return;
        // Shown in the move's status (API, CLI): the masked description, as in the logs — no tenant data.
        this.failures.set(tenantId, describeError(err));
        this.onFailure(tenantId, err);
      })
      .finally(() => this.runs.delete(tenantId));
    this.runs.set(tenantId, { stop, done });
  }

  private async stop(tenantId: string): Promise<void> {
    const run = this.runs.get(tenantId);
    if (!run) return;
    run.stop.abort();
    await run.done;
  }

  private describe(move: PlacementMove): MoveStatus {
    return {
      ...move,
      percent: Math.floor((100 * move.copied) / Math.max(move.total, 1)),
      running: this.runs.has(move.tenantId),
      error: this.failures.get(move.tenantId) ?? null,
    };
  }
}
