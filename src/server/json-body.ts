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
 * Parses a JSON request body and refuses, naming the field, what no route can store: nesting
 * deeper than MAX_DEPTH, a NUL or an unpaired surrogate in any key or string (PostgreSQL's text and
 * jsonb refuse them), a `__proto__` key. Every route gets this, whatever its schema.
 *
 * Nesting is counted on the text, before parsing: JSON.parse does not recurse, but everything that
 * copies or walks the value afterwards may (handing it from a body worker to the event loop
 * overflowed the stack at ~2,000 levels). Only escaped forms can carry the refused characters in
 * valid JSON (`\u0000`, `\ud800`, `\u005f_proto__`), so the parsed body is walked only when the text
 * has an escape or a `__proto__`: the common body (hundreds of numbers) pays two linear scans.
 */
export function parseJsonBody(text: string): unknown {
  if (nestsDeeperThan(text, MAX_DEPTH)) throw new ValidationError("body", `nests deeper than ${MAX_DEPTH} levels`);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new ValidationError("body", "is not valid JSON");
  }
  if (SUSPECT.test(text)) checkTree(body);
  return body;
}

/** Any \u escape (it may spell a NUL, a surrogate or part of `__proto__`), or `__proto__` itself. */
const SUSPECT = /\\u|__proto__/;

/** Whether brackets outside strings nest deeper than `max` (the text need not be valid JSON). */
function nestsDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // a backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

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
