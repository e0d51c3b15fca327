import type { BulkheadConfig } from "../config.js";
import { shown, ValidationError } from "../errors.js";
import { assertStorableText } from "../storable-text.js";
import type { VectorRecord } from "../stores/store.js";

export type Limits = Pick<BulkheadConfig, "maxTopK" | "maxBatchSize" | "maxIdLength" | "maxMetadataBytes">;

/** A document as callers pass it to `upsertDocuments`. */
export interface DocumentInput {
  id: string;
  values: number[];
  metadata?: Record<string, unknown>;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;

export function validateId(id: unknown, field: string, limits: Limits): string {
  if (typeof id !== "string" || id.length === 0) throw new ValidationError(field, "must be a non-empty string");
  if (Buffer.byteLength(id, "utf8") > limits.maxIdLength) throw new ValidationError(field, `must be at most ${limits.maxIdLength} bytes`);
  // Control characters break logs and exports and are never a meaningful part of an id.
  if (/[\u0000-\u001f\u007f]/.test(id)) throw new ValidationError(field, "must not contain control characters");
  return assertStorableText(id, field);
}

export function validateVector(values: unknown, dimension: number, field: string, metric: string): number[] {
  if (!Array.isArray(values)) throw new ValidationError(field, `must be an array of ${dimension} numbers`);
  if (values.length !== dimension) throw new ValidationError(field, `has ${values.length} dimensions; this tenant's index has ${dimension}`);
  // pgvector computes lengths and distances in single precision: a squared length that overflows
  // (values above ~1.8e19) or, for cosine, underflows to 0 (values below ~1e-23) scores null — and
  // null ranks before every real match. Summed in the same pass, the way pgvector sums, in float32.
  let squared = 0;
  let nonZero = false;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v !== "number" || !Number.isFinite(v)) throw new ValidationError(`${field}[${i}]`, `must be a finite number, got ${shown(v)}`);
    // pgvector stores float32: a finite double above float32's range would become Infinity.
    if (Math.abs(v) > 3.4e38) throw new ValidationError(`${field}[${i}]`, "is outside the single-precision range");
    if (v !== 0) nonZero = true;
    const f = Math.fround(v);
    squared = Math.fround(squared + Math.fround(f * f));
  }
  if (metric === "cosine" && !nonZero) throw new ValidationError(field, "is all zeros, which has no cosine similarity");
  if (!Number.isFinite(squared)) throw new ValidationError(field, "is too long to score in single precision (its squared length overflows); scale it down");
  if (metric === "cosine" && squared === 0) throw new ValidationError(field, "has no length in single precision (its values are too small); cosine similarity is undefined");
  return values as number[];
}

/**
 * Validates caller metadata against Pinecone's value model (strings, finite numbers, booleans,
 * lists of strings) and the size limit, and stamps the tenant's id. A caller may not set
 * `tenant_id` to anything but its own.
 */
export function validateMetadata(metadata: unknown, tenantId: string, field: string, limits: Limits): Record<string, unknown> {
  if (metadata === undefined || metadata === null) return { tenant_id: tenantId };
  if (!isPlainObject(metadata)) throw new ValidationError(field, "must be a plain JSON object");
  for (const [key, value] of Object.entries(metadata)) {
    const at = `${field}.${key}`;
    if (key.length === 0 || key.length > 256 || key.startsWith("$")) throw new ValidationError(at, "keys must be 1-256 characters and must not start with $");
    assertStorableText(key, at);
    if (key === "tenant_id" && value !== tenantId) throw new ValidationError(at, "is set by Bulkhead to the caller's tenant and cannot be given another value");
    const ok =
      typeof value === "string" ||
      typeof value === "boolean" ||
      (typeof value === "number" && Number.isFinite(value)) ||
      (Array.isArray(value) && value.every((x) => typeof x === "string"));
    if (!ok) throw new ValidationError(at, "must be a string, a finite number, a boolean or a list of strings");
    if (typeof value === "string") assertStorableText(value, at);
    if (Array.isArray(value)) value.forEach((x, i) => assertStorableText(x as string, `${at}[${i}]`));
  }
  const stamped = { ...metadata, tenant_id: tenantId };
  const size = Buffer.byteLength(JSON.stringify(stamped), "utf8");
  if (size > limits.maxMetadataBytes) throw new ValidationError(field, `is ${size} bytes as JSON; the limit is ${limits.maxMetadataBytes}`);
  return stamped;
}

/** Validates a whole batch before anything is written; the first problem is reported with its position. */
export function validateDocuments(documents: unknown, tenantId: string, dimension: number, metric: string, limits: Limits, maxBatch: number): VectorRecord[] {
  if (!Array.isArray(documents) || documents.length === 0) throw new ValidationError("documents", "must be a non-empty array");
  const max = Math.min(limits.maxBatchSize, maxBatch);
  if (documents.length > max) throw new ValidationError("documents", `holds ${documents.length} documents; at most ${max} per call`);
  const seen = new Map<string, number>();
  return documents.map((doc, i) => {
    const at = `documents[${i}]`;
    if (!isPlainObject(doc)) throw new ValidationError(at, "must be an object with id, values and optional metadata");
    for (const key of Object.keys(doc)) {
      if (key !== "id" && key !== "values" && key !== "metadata") throw new ValidationError(`${at}.${key}`, "unknown field (allowed: id, values, metadata)");
    }
    const id = validateId(doc.id, `${at}.id`, limits);
    const first = seen.get(id);
    if (first !== undefined) throw new ValidationError(`${at}.id`, `"${id}" also appears at documents[${first}]; ids in one batch must be unique`);
    seen.set(id, i);
    return { id, values: validateVector(doc.values, dimension, `${at}.values`, metric), metadata: validateMetadata(doc.metadata, tenantId, `${at}.metadata`, limits) };
  });
}

export function validateIds(ids: unknown, limits: Limits): string[] {
  if (!Array.isArray(ids) || ids.length === 0) throw new ValidationError("ids", "must be a non-empty array of ids");
  if (ids.length > limits.maxBatchSize) throw new ValidationError("ids", `holds ${ids.length} ids; at most ${limits.maxBatchSize} per call`);
  return ids.map((id, i) => validateId(id, `ids[${i}]`, limits));
}

export function validateTopK(topK: unknown, limits: Limits): number {
  if (!Number.isInteger(topK) || (topK as number) < 1 || (topK as number) > limits.maxTopK) {
    throw new ValidationError("topK", `must be a whole number from 1 to ${limits.maxTopK}, got ${shown(topK)}`);
  }
  return topK as number;
}
