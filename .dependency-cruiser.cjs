/**
 * Layer rules, checked in CI (`npm run lint:deps`). Layers point down:
 *
 *   cli, server, demo         the doors (command line, HTTP)
 *   bulkhead.ts               composition root (stores/open-stores.ts builds the concrete stores)
 *   readiness, operations     whole-system work
 *   data, costs, tenancy      the core
 *   limits, monitoring, isolation
 *   stores                    vector stores (drivers under stores/<name>/)
 *   db                        the only layer that talks to the database drivers
 *
 * Every rule is an error: it fails the run.
 */
const core = "^src/(data|text|costs|tenancy|limits|monitoring|isolation|readiness|operations)/";

module.exports = {
  forbidden: [
    {
      name: "no-circular",
      severity: "error",
      comment: "A cycle means two modules are one; split or merge them.",
      from: { path: "^src/" },
      to: { circular: true },
    },
    {
      name: "database-drivers-only-in-db",
      severity: "error",
      comment:
        "pg and PGlite are reached through src/db (TenantDb / Db) only, so a tenant context is always set the one way. " +
        "The change feed holds a LISTEN connection of its own (no tenant data goes over it).",
      from: { path: "^src/", pathNot: ["^src/db/", "^src/tenancy/change-feed\\.ts$", "\\.test\\.ts$"] },
      to: { path: "node_modules/(pg|@electric-sql/pglite|@electric-sql/pglite-pgvector)/" },
    },
    {
      name: "db-is-the-bottom",
      severity: "error",
      comment: "src/db knows nothing of the layers above it.",
      from: { path: "^src/db/" },
      to: { path: "^src/", pathNot: ["^src/db/", "^src/errors\\.ts$", "^src/config\\.ts$"] },
    },
    {
      name: "stores-below-the-core",
      severity: "error",
      comment: "A store serves the core; it never reaches up into the registry, the data manager, costs or the doors.",
      from: { path: "^src/stores/" },
      to: { path: "^src/(data|costs|tenancy|operations|readiness|server|cli|demo)/" },
    },
    {
      name: "core-below-the-doors",
      severity: "error",
      comment: "The library works without its HTTP service and CLI.",
      from: { path: core },
      to: { path: "^src/(server|cli|demo|adapters)/" },
    },
    {
      name: "the-client-stands-alone",
      severity: "error",
      comment: "bulkhead/client runs in applications that talk to a service: it imports nothing of the library (no database drivers, no server).",
      from: { path: "^src/client/" },
      to: { path: "^src/", pathNot: "^src/client/" },
    },
    {
      name: "only-the-cli-imports-the-cli",
      severity: "error",
      from: { path: "^src/", pathNot: "^src/cli/" },
      to: { path: "^src/cli/" },
    },
    {
      name: "nothing-outside-stores-names-a-concrete-store",
      severity: "error",
      comment: "Everything works through the store interfaces (stores/store.ts); stores/open-stores.ts is the one place that builds concrete stores.",
      from: { path: "^src/", pathNot: ["^src/stores/", "\\.test\\.ts$"] },
      to: { path: "^src/stores/[^/]+/" },
    },
    {
      name: "pinecone-sdk-only-in-its-driver",
      severity: "error",
      from: { path: "^src/", pathNot: "^src/stores/pinecone/" },
      to: { path: "node_modules/@pinecone-database/" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    exclude: { path: "(^|/)dist/" },
  },
};
