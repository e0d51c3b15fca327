import { BulkheadError, DatabaseError } from "../errors.js";

/**
 * Errors as they may be logged: type, code and a message with no tenant data in it.
 *
 * Database drivers attach the failed statement's text and parameters to their errors (PGlite's
 * `query` and `params`, pg's `detail`/`where`), and their messages quote offending values
 * (`value "…" is out of range`, `invalid input syntax for type vector: "[…]"`). Logging such an
 * error whole would write a batch's vectors and metadata text into the logs. So every log line of
 * an error goes through here (pino's `err` serializer, and the `warn` lines of background work):
 * only named fields are kept, quoted literals are masked, and the length is bounded.
 */
export interface SafeError {
  type: string;
  message: string;
  /** Bulkhead's stable code, or the database's SQLSTATE. */
  code?: string;
  /** The field a validation error names. */
  field?: string;
  /** Where a database error arose: names from the schema, never values. */
  table?: string;
  column?: string;
  constraint?: string;
  stack?: string;
  cause?: SafeError;
}

const MAX_MESSAGE = 300;

/**
 * Masks quoted literals — where drivers, parsers and triggers put the values they choke on — from
 * the first quote to the last (quoted JSON nests quotes, so pairing them is not safe), and bounds
 * the length: `value "…" is out of range for type bigint`.
 */
export function maskMessage(message: string): string {
  const masked = message.replace(/"[\s\S]*"/, '"…"').replace(/'[\s\S]*'/, "'…'").replace(/\((?:[^()]{40,})\)/g, "(…)");
  return masked.length > MAX_MESSAGE ? `${masked.slice(0, MAX_MESSAGE)}…` : masked;
}

/** A payload-free description of any thrown value (the serializer of `err` in every log line). */
export function safeError(err: unknown, depth = 0): SafeError {
  if (!(err instanceof Error)) return { type: typeof err, message: "a non-error value was thrown" };
  const type = err.constructor?.name ?? err.name ?? "Error";
  // Bulkhead's own messages name fields and ids, never payloads; everyone else's are masked.
  const message = err instanceof BulkheadError && !(err instanceof DatabaseError) ? boundLength(err.message) : maskMessage(err.message ?? "");
  const out: SafeError = { type, message };
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string" && /^[A-Z0-9_]{1,64}$/.test(code)) out.code = code;
  const field = (err as { field?: unknown }).field;
  if (typeof field === "string") out.field = boundLength(field);
  for (const name of ["table", "column", "constraint"] as const) {
    const v = (err as unknown as Record<string, unknown>)[name];
    if (typeof v === "string" && /^[A-Za-z0-9_]{1,63}$/.test(v)) out[name] = v;
  }
  if (typeof err.stack === "string") {
    // The stack's first line repeats the raw message; the frames carry no data.
    const frames = err.stack.split("\n").filter((l) => /^\s+at /.test(l));
    out.stack = [`${type}: ${message}`, ...frames.slice(0, 20)].join("\n");
  }
  if (err.cause !== undefined && depth < 2) out.cause = safeError(err.cause, depth + 1);
  return out;
}

/** One line for text logs: `Type CODE: message`. */
export function describeError(err: unknown): string {
  const e = safeError(err);
  return `${e.type}${e.code ? ` ${e.code}` : ""}: ${e.message}`;
}

function boundLength(text: string): string {
  return text.length > MAX_MESSAGE ? `${text.slice(0, MAX_MESSAGE)}…` : text;
}
