import { parentPort } from "node:worker_threads";
import { ValidationError } from "../errors.js";
import { decodeJsonBody } from "./json-body.js";
import { OFFLOADED_BODIES, parse, type OffloadedBody } from "./schemas.js";

/** A request body to parse and validate, as the pool sends it. */
export interface BodyJob {
  id: number;
  bytes: Uint8Array;
  schema: OffloadedBody;
}

/** The answer: the validated body, or the field and message of the first problem, or a failure. */
export type BodyResult = { id: number; body: unknown } | { id: number; invalid: { field: string; message: string } } | { id: number; failed: string };

/**
 * A body worker (see body-parser-pool.ts): decodes, parses and validates one body at a time — the
 * same functions the event loop runs for small bodies — and answers with the validated value.
 * What it answers with never contains the caller's text beyond the value itself.
 */
parentPort!.on("message", ({ id, bytes, schema }: BodyJob) => {
  let result: BodyResult;
  try {
    result = { id, body: parse<unknown>(OFFLOADED_BODIES[schema], decodeJsonBody(bytes), "body") };
  } catch (err) {
    if (err instanceof ValidationError) result = { id, invalid: { field: err.field, message: err.reason } };
    else result = { id, failed: err instanceof Error ? err.name : "error" };
  }
  try {
    parentPort!.postMessage(result);
  } catch (err) {
    // The value could not be handed over (it should not happen: nesting is bounded by then); the
    // body is refused at once rather than left to the pool's deadline.
    parentPort!.postMessage({ id, failed: err instanceof Error ? err.name : "error" } satisfies BodyResult);
  }
});
