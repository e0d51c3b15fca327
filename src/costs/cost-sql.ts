/** All SQL of the cost engine, as named statements. */
export const costSql = {
  /** Per kind, for one tenant and period (runs in the tenant's context). */
  usageByKind: `SELECT kind, COALESCE(sum(quantity), 0)::text AS quantity, COALESCE(sum(cost_pico), 0)::text AS cost_pico
                  FROM usage_events WHERE tenant_id = $1 AND period = $2 GROUP BY kind`,
  /** Every index, and for a dedicated one its owner: the tenant placed in it, or moving to it (a move's target is billed to the tenant moving, not shared). */
  indexes: `SELECT i.name, i.kind, COALESCE(t.id, m.tenant) AS owner FROM indexes i
              LEFT JOIN tenants t ON t.index_id = i.id AND i.kind = 'dedicated'
              LEFT JOIN placement_moves m ON m.to_index_id = i.id AND i.kind = 'dedicated'
             ORDER BY i.id`,
  /** $1 tenant, $2 since when: the LLM tokens its answers used (runs in the tenant's context). */
  llmTokensSince: "SELECT coalesce(sum(quantity), 0)::text AS n FROM usage_events WHERE tenant_id = $1 AND kind = 'llm' AND occurred_at >= $2::timestamptz",
  insertRun: `INSERT INTO allocation_runs (period, method, total_cents, breakdown) VALUES ($1, $2, $3, $4) RETURNING id`,
  /** $1 run, $2 JSON array of {tenant_id, cents, dedicated_cents}: each row written in its tenant's context (migration 19). */
  insertAllocations: "SELECT insert_allocations($1, $2::jsonb)",
  latestRun: `SELECT id, method, total_cents::text AS total_cents, breakdown FROM allocation_runs WHERE period = $1 ORDER BY id DESC LIMIT 1`,
  /** The tenant's share in the latest run of a period (runs in the tenant's context). */
  allocationOf: `SELECT a.cents::text AS cents FROM cost_allocations a
                  WHERE a.tenant_id = $1 AND a.run_id = (SELECT max(id) FROM allocation_runs WHERE period = $2)`,
};
