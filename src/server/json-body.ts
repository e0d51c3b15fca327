import { ValidationError } from "../errors.js";
import { textProblem } from "../storable-text.js";

/** Deepest nesting a request body may have (the deepest legitimate one, a filter, is 8 levels of objects and arrays). */
const MAX_DEPTH = 32;

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * A request body's bytes as JSON (`parseJsonBody`), refused when they are not valid UTF-8:
 * decoding leniently would turn different bytes into the same U+FFFD characters, so two distinct
 * ids could become one.
 */
export function decodeJsonBody(bytes: Uint8Array): unknown {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new ValidationError("body", "is not valid UTF-8 text");
  }
  return parseJsonBody(text);
}

/**
 * Parses a JSON request body and refuses, naming the field, what no route can store: a NUL or an
 * unpaired surrogate in any key or string (PostgreSQL's text and jsonb refuse them), a
 * `__proto__` key — and, while walking for those, nesting deeper than MAX_DEPTH. Every route gets
 * this, whatever its schema.
 *
 * Only escaped forms can carry such characters in valid JSON (`\u0000`, `\ud800`), so the raw text
 * is scanned for them first and the parsed body is walked only when one might be there: the
 * common body (hundreds of numbers) pays one regular-expression scan.
 */
export function parseJsonBody(text: string): unknown {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new ValidationError("body", "is not valid JSON");
  }
  // Deep nesting alone needs no scan of its own: JSON.parse does not recurse, and no route reads a
  // body deeper than its schema (a filter stops at 8 levels), so a deep body fails its schema.
  if (SUSPECT.test(text)) checkTree(body);
  return body;
}

const SUSPECT = /\\u0000|\\u[dD][89a-fA-F]|__proto__/;

/** Walks the parsed body without recursion and throws for the first key or string that cannot be stored. */
function checkTree(root: unknown): void {
  const stack: { value: unknown; path: string; depth: number }[] = [{ value: root, path: "", depth: 0 }];
  while (stack.length > 0) {
    const { value, path, depth } = stack.pop()!;
    const field = path || "body";
    if (typeof value === "string") {
      const problem = textProblem(value);
      if (problem) throw new ValidationError(field, problem);
    } else if (typeof value === "object" && value !== null) {
      if (depth >= MAX_DEPTH) throw new ValidationError(field, `nests deeper than ${MAX_DEPTH} levels`);
      if (Array.isArray(value)) {
        for (let i = value.length - 1; i >= 0; i--) stack.push({ value: value[i], path: `${path}[${i}]`, depth: depth + 1 });
      } else {
        for (const key of Object.keys(value)) {
          const name = key.length > 64 ? `${key.slice(0, 64)}…` : key;
          const at = path ? `${path}.${name}` : name;
          if (key === "__proto__") throw new ValidationError(at, "a key named __proto__ is not accepted");
          const problem = textProblem(key);
          if (problem) throw new ValidationError(path || "body", `has a key that ${problem}`);
          stack.push({ value: (value as Record<string, unknown>)[key], path: at, depth: depth + 1 });
        }
      }
    }
  }
}
