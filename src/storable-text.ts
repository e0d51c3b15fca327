import { ValidationError } from "./errors.js";

/**
 * Text PostgreSQL can store. Its `text` and `jsonb` types refuse the NUL character, and a UTF-16
 * surrogate that is not part of a pair has no UTF-8 encoding at all: either one in a value would
 * reach the database and fail there (a 500). Every string a caller gives — ids, names, metadata
 * keys and values, filter fields and values — is checked here first, and refused naming its field.
 */
// Without the u flag, the pattern sees UTF-16 code units: a high surrogate not followed by a low one, or a low one not preceded by a high one.
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

export function textProblem(value: string): string | null {
  if (value.includes("\u0000")) return "must not contain the NUL character (U+0000)";
  if (LONE_SURROGATE.test(value)) return "must not contain an unpaired UTF-16 surrogate (not valid Unicode text)";
  return null;
}

/** Throws a `ValidationError` naming `field` when `value` cannot be stored as text. */
export function assertStorableText(value: string, field: string): string {
  const problem = textProblem(value);
  if (problem) throw new ValidationError(field, problem);
  return value;
}
