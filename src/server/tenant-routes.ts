import { route, type RouteSpec } from "./route-spec.js";
import { answerBody, deleteBody, idsBody, jobParams, listQuery, periodQuery, queryBody, searchBody, textDocumentsBody, upsertBody } from "./schemas.js";
import { streamAnswer } from "./answer-stream.js";
import type { DocumentInput } from "../data/validation.js";
import type { MetadataFilter } from "../stores/filter.js";

/**
 * The tenant API. The tenant is the key's, always: no route takes a tenant from the path, and a
 * `tenantId` in a body that is not the key's own is refused before the handler runs.
 */
export const tenantRoutes: RouteSpec[] = [
  route({
    method: "POST",
    url: "/v1/documents",
    operation: "upsert",
    access: "tenant",
    scope: "write",
    tag: "tenant",
    summary: "Insert or replace documents (all or nothing)",
    body: upsertBody,
    handler: ({ bh, tenantId, body }) => bh.dataManager.upsertDocuments(tenantId, body.documents as DocumentInput[]),
  }),
  route({
    method: "POST",
    url: "/v1/query",
    operation: "query",
    access: "tenant",
    scope: "read",
    tag: "tenant",
    summary: "Nearest neighbours among the tenant's own documents",
    body: queryBody,
    handler: ({ bh, tenantId, body }) =>
      bh.dataManager.queryDocuments(tenantId, body.vector, { topK: body.topK, filter: body.filter as MetadataFilter | undefined, embedTokens: body.embedTokens }),
  }),
  route({
    method: "POST",
    url: "/v1/documents/fetch",
    operation: "fetch",
    access: "tenant",
    scope: "read",
    tag: "tenant",
    summary: "Fetch documents by id",
    body: idsBody,
    handler: ({ bh, tenantId, body }) => bh.dataManager.fetchDocuments(tenantId, body.ids),
  }),
  route({
    method: "POST",
    url: "/v1/documents/delete",
    operation: "delete",
    access: "tenant",
    scope: "write",
    tag: "tenant",
    summary: "Delete documents by id, or every document whose metadata matches a filter",
    body: deleteBody,
    handler: ({ bh, tenantId, body }) => bh.dataManager.deleteDocuments(tenantId, body.filter ? { filter: body.filter } : body.ids!),
  }),
  route({
    method: "POST",
    url: "/v1/documents/text",
    operation: "upsert",
    access: "tenant",
    scope: "write",
    tag: "tenant",
    summary: "Store text documents (plain, Markdown or HTML), cut into chunks; a document with an existing id is replaced whole (all or nothing)",
    body: textDocumentsBody,
    handler: ({ bh, tenantId, body }) => bh.text.ingestDocuments(tenantId, body.documents),
  }),
  route({
    method: "POST",
    url: "/v1/documents/text/jobs",
    operation: "upsert",
    access: "tenant",
    scope: "write",
    tag: "tenant",
    status: 202,
    summary: "Store many text documents in the background (up to 2,000): answers 202 with a job id; follow it at GET /v1/jobs/{jobId}",
    body: textDocumentsBody,
    handler: ({ bh, tenantId, body }) => bh.textJobs.start(tenantId, body.documents),
  }),
  route({
    method: "GET",
    url: "/v1/jobs/:jobId",
    access: "tenant",
    scope: "read",
    tag: "tenant",
    summary: "A background job's status and progress (another tenant's job id is not found)",
    params: jobParams,
    handler: ({ bh, tenantId, params }) => bh.textJobs.get(tenantId, params.jobId),
  }),
  route({
    method: "GET",
    url: "/v1/documents/text",
    operation: "fetch",
    access: "tenant",
    scope: "read",
    tag: "tenant",
    summary: "The tenant's text documents in id order (after, limit)",
    query: listQuery,
    handler: ({ bh, tenantId, query }) => bh.text.listDocuments(tenantId, { after: query.after, limit: query.limit }),
  }),
  route({
    method: "POST",
    url: "/v1/documents/text/delete",
    operation: "delete",
    access: "tenant",
    scope: "write",
    tag: "tenant",
    summary: "Delete text documents and all their chunks by id",
    body: idsBody,
    handler: ({ bh, tenantId, body }) => bh.text.deleteDocuments(tenantId, body.ids),
  }),
  route({
    method: "POST",
    url: "/v1/search",
    operation: "query",
    access: "tenant",
    scope: "read",
    tag: "tenant",
    summary: "Search the tenant's text chunks: full text, and with an embedder configured also by vector, fused by rank (mode says which)",
    body: searchBody,
    handler: ({ bh, tenantId, body }) => bh.text.searchText(tenantId, body.query, { topK: body.topK, filter: body.filter as MetadataFilter | undefined, weights: body.weights }),
  }),
  route({
    method: "POST",
    url: "/v1/answer",
    operation: "query",
    access: "tenant",
    scope: "read",
    tag: "tenant",
    summary: "Answer a question from the tenant's own text, citing its chunks; with stream: true, as server-sent events (sources, delta…, done)",
    body: answerBody,
    servedWhen: (bh) => bh.text.answers,
    handler: async ({ bh, tenantId, body, reply }) => {
      const options = { topK: body.topK, filter: body.filter as MetadataFilter | undefined, weights: body.weights };
      if (body.stream) return streamAnswer(reply, bh.text.answerStream(tenantId, body.question, options));
      return bh.text.answer(tenantId, body.question, options);
    },
  }),
  route({
    method: "GET",
    url: "/v1/usage",
    operation: "count",
    access: "tenant",
    scope: "read",
    tag: "tenant",
    summary: "The tenant's quota, documents stored, latency and error statistics",
    handler: async ({ bh, tenantId }) => {
      const tenant = await bh.registry.resolveActive(tenantId);
      return {
        tenantId,
        tier: tenant.tier,
        quota: tenant.quota,
        documents: await bh.dataManager.countDocuments(tenantId),
        stats: bh.monitor.getTenantStats(tenantId),
      };
    },
  }),
  route({
    method: "GET",
    url: "/v1/costs",
    access: "tenant",
    scope: "read",
    tag: "tenant",
    summary: "The tenant's cost summary for a month (default: this month)",
    query: periodQuery,
    handler: async ({ bh, tenantId, query }) => {
      await bh.registry.resolveActive(tenantId);
      return bh.costEngine.getTenantCostSummary(tenantId, query.period);
    },
  }),
];
