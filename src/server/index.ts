/**
 * `bulkhead/server`: the HTTP service, imported separately so library users do not load Fastify.
 */
export { buildServer, type ServerOptions } from "./app.js";
export { startServer, type ServeOptions, type RunningServer } from "./serve.js";
export { toProblem, type Problem } from "./problem.js";
export { buildOpenApi } from "./openapi.js";
