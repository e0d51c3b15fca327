import { ValidationError } from "../errors.js";
import { textProblem } from "../storable-text.js";

/**
 * A Pinecone-style metadata filter, e.g.
 * `{ genre: { $in: ["a", "b"] }, year: { $gte: 2020 }, $or: [{ draft: false }, { owner: "me" }] }`.
 */
export type MetadataFilter = Record<string, unknown>;

export interface CompiledFilter {
  /** A boolean SQL expression, or `TRUE` for an empty filter. */
  sql: string;
  params: unknown[];
}

const COMPARISONS = { $gt: ">", $gte: ">=", $lt: "<", $lte: "<=" } as const;
const FIELD_OPERATORS = new Set(["$eq", "$ne", "$in", "$nin", "$exists", ...Object.keys(COMPARISONS)]);
const MAX_DEPTH = 8;
/** Conditions and groups together: an empty `{}` inside `$or` is a node too (it compiles to TRUE). */
const MAX_CONDITIONS = 256;
const MAX_LIST = 1000;

type Scalar = string | number | boolean;
// Strings must be storable text too: a NUL or a lone surrogate in a jsonb parameter fails in the database.
const isScalar = (v: unknown): v is Scalar => (typeof v === "string" && textProblem(v) === null) || typeof v === "boolean" || (typeof v === "number" && Number.isFinite(v));
const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Compiles a filter to a parameterised SQL predicate over the jsonb column `column`. Parameter
 * numbering starts at `$firstParam`. Field names are parameters too, so no part of the filter is
 * ever spliced into SQL. The predicate is always ANDed with the tenant's own scope by the caller,
 * so no filter (a `tenant_id` key, an `$or`) can widen what is visible. Semantics follow Pinecone:
 * `$eq`/`$in` on a list field match when the list contains the value; `$ne`/`$nin` also match
 * documents without the field; `$gt…$lte` compare numbers only.
 */
export function compileFilter(filter: unknown, firstParam: number, column = "metadata"): CompiledFilter {
  if (filter === undefined || filter === null) return { sql: "TRUE", params: [] };
  const params: unknown[] = [];
  let conditions = 0;
  const param = (value: unknown, cast: string) => {
    params.push(value);
    return `$${firstParam + params.length - 1}::${cast}`;
  };

  const node = (f: unknown, path: string, depth: number): string => {
    if (!isPlainObject(f)) throw new ValidationError(path, "a filter must be an object");
    if (depth > MAX_DEPTH) throw new ValidationError(path, `filters may nest at most ${MAX_DEPTH} levels`);
    // Every object counts, empty ones too: `{"$or": [{}, {}, …]}` once compiled to SQL of any length.
    if (depth > 1 && ++conditions > MAX_CONDITIONS) throw new ValidationError(path, `a filter may hold at most ${MAX_CONDITIONS} conditions`);
    const parts: string[] = [];
    for (const [key, value] of Object.entries(f)) {
      const at = `${path}.${key}`;
      if (key === "$and" || key === "$or") {
        if (!Array.isArray(value) || value.length === 0) throw new ValidationError(at, `${key} takes a non-empty array of filters`);
        const inner = value.map((v, i) => node(v, `${at}[${i}]`, depth + 1));
        parts.push(`(${inner.join(key === "$and" ? " AND " : " OR ")})`);
      } else if (key.startsWith("$")) {
        throw new ValidationError(at, `unknown operator ${key} (allowed at this level: $and, $or, or a field name)`);
      } else {
        if (key.length > 256) throw new ValidationError(at, "field names are at most 256 characters");
        const problem = textProblem(key);
        if (problem) throw new ValidationError(at, `field names ${problem}`);
        parts.push(field(key, value, at));
      }
    }
    return parts.length === 0 ? "TRUE" : parts.length === 1 ? parts[0]! : `(${parts.join(" AND ")})`;
  };

  const field = (name: string, spec: unknown, path: string): string => {
    const ops = isPlainObject(spec) ? spec : { $eq: spec };
    const parts: string[] = [];
    for (const [op, value] of Object.entries(ops)) {
      const at = isPlainObject(spec) ? `${path}.${op}` : path;
      if (!FIELD_OPERATORS.has(op)) throw new ValidationError(at, `unknown operator ${op} (allowed: ${[...FIELD_OPERATORS].join(", ")})`);
      if (++conditions > MAX_CONDITIONS) throw new ValidationError(path, `a filter may hold at most ${MAX_CONDITIONS} conditions`);
      const f = () => param(name, "text");
      switch (op) {
        case "$eq":
        case "$ne": {
          if (!isScalar(value)) throw new ValidationError(at, `${op} takes a string (storable text: no NUL, no unpaired surrogate), a finite number or a boolean`);
          const hit = `COALESCE((${column} -> ${f()}) @> ${param(JSON.stringify(value), "jsonb")}, false)`;
          parts.push(op === "$eq" ? hit : `NOT ${hit}`);
          break;
        }
        case "$in":
        case "$nin": {
          if (!Array.isArray(value) || value.length === 0 || value.length > MAX_LIST || !value.every(isScalar)) {
            throw new ValidationError(at, `${op} takes a non-empty array (at most ${MAX_LIST}) of strings (storable text), finite numbers or booleans`);
          }
          const hit = `EXISTS (SELECT 1 FROM jsonb_array_elements(${param(JSON.stringify(value), "jsonb")}) AS v(x) WHERE (${column} -> ${f()}) @> v.x)`;
          parts.push(op === "$in" ? hit : `NOT ${hit}`);
          break;
        }
        case "$exists": {
          if (typeof value !== "boolean") throw new ValidationError(at, "$exists takes true or false");
          parts.push(`${value ? "" : "NOT "}(${column} ? ${f()})`);
          break;
        }
        default: {
          if (typeof value !== "number" || !Number.isFinite(value)) throw new ValidationError(at, `${op} takes a finite number`);
          const name = f();
          // CASE fixes the evaluation order, so a non-numeric value is never cast.
          parts.push(`CASE WHEN jsonb_typeof(${column} -> ${name}) = 'number' THEN (${column} ->> ${name})::numeric ${COMPARISONS[op as keyof typeof COMPARISONS]} ${param(value, "numeric")} ELSE false END`);
        }
      }
    }
    if (parts.length === 0) throw new ValidationError(path, "an operator object needs at least one operator");
    return parts.length === 1 ? parts[0]! : `(${parts.join(" AND ")})`;
  };

  return { sql: node(filter, "filter", 1), params };
}

/**
 * Validates a filter that chooses documents to delete: the same operators, values and limits as a
 * query's (`compileFilter`), and no empty object at any level. `{}` matches every document, and so
 * does a group holding one (`{ $or: [{}, { a: 1 }] }`): a delete must never empty a tenant because
 * a filter came out empty. Throws `ValidationError` naming the field.
 */
export function assertSelective(filter: unknown): MetadataFilter {
  if (!isPlainObject(filter)) throw new ValidationError("filter", "must be an object naming at least one condition");
  compileFilter(filter, 1);
  const groups = (f: Record<string, unknown>, at: string): void => {
    if (Object.keys(f).length === 0) throw new ValidationError(at, "must name at least one condition: an empty filter matches every document");
    for (const key of ["$and", "$or"] as const) (f[key] as Record<string, unknown>[] | undefined)?.forEach((g, i) => groups(g, `${at}.${key}[${i}]`));
  };
  groups(filter, "filter");
  return filter;
}
