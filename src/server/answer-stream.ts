import type { FastifyReply } from "fastify";
import type { AnswerEvent, TextAnswer } from "../text/text-manager.js";
import { toProblem } from "./problem.js";

/**
 * Sends an answer as server-sent events: `sources`, then `delta` events as the model writes, then
 * `done` (the whole answer, its citations and usage). Everything that can refuse — validation, the
 * token budget, retrieval, the provider's first response — happens before the stream opens, so a
 * refusal is an ordinary problem+json answer with its status; a failure after that ends the stream
 * with an `error` event (the status cannot change once sent).
 */
export async function streamAnswer(reply: FastifyReply, events: AsyncGenerator<AnswerEvent, TextAnswer>): Promise<FastifyReply> {
  const first = await events.next();
  const second = first.done ? first : await events.next();
  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", "x-accel-buffering": "no" });
  const send = (event: string, data: unknown) => raw.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  const emit = (next: IteratorResult<AnswerEvent, TextAnswer>) => {
    if (next.done) send("done", next.value);
    else if (next.value.type === "sources") send("sources", { sources: next.value.sources });
    else send("delta", { text: next.value.text });
    return next.done;
  };
  try {
    if (!emit(first) && !emit(second)) {
      for (let next = await events.next(); !emit(next); next = await events.next());
    }
  } catch (err) {
    send("error", toProblem(err).problem);
  } finally {
    raw.end();
  }
  return reply;
}
