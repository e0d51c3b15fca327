import { createHash } from "node:crypto";
import pg from "pg";
import { toWireValue, type Row } from "./db.js";

interface Step {
  text: string;
  params: readonly unknown[];
  /** Prepared under this name (the context statement's is fixed); by default a digest of the text. */
  name?: string;
  /** Its rows are not wanted (the context statement): not described, not decoded. */
  discard?: boolean;
}

/**
 * Named statements each physical connection has already parsed, oldest use first. Every statement
 * is prepared under a name derived from its text, so PostgreSQL parses (and, where it keeps a
 * generic plan, plans) each once per connection instead of once per request; a connection keeps at
 * most PREPARED_PER_CONNECTION of them (the least recently used are closed), because statement
 * texts vary with the index table and the filter's shape.
 */
const prepared = new WeakMap<object, Map<string, true>>();
const PREPARED_PER_CONNECTION = 100;
/**
 * Longer statements (a filter of hundreds of conditions) are parsed per request and not kept: a
 * plan's memory grows with its text, and PostgreSQL keeps a prepared plan until it is closed.
 */
const MAX_PREPARED_TEXT = 2_048;
/** Statements a failed pipeline may have left prepared on the server: closed with the connection's next pipeline. */
const toClose = new WeakMap<object, string[]>();

/** The name a step is prepared under; undefined for a text too long to keep (parsed as the unnamed statement). */
const preparedName = (step: Step) => step.name ?? (step.text.length <= MAX_PREPARED_TEXT ? nameOf(step.text) : undefined);

/** Statement text → its name: a digest, so the same text always gets the same name (bounded cache). */
const names = new Map<string, string>();
function nameOf(text: string): string {
  let name = names.get(text);
  if (name === undefined) {
    if (names.size >= 2_000) names.clear();
    name = `bh_${createHash("sha1").update(text).digest("base64url")}`;
    names.set(text, name);
  }
  return name;
}

interface Field {
  name: string;
  dataTypeID: number;
}

/**
 * Sends several statements in one network round trip: Parse/Bind/Describe/Execute for each, then a
 * single Sync. PostgreSQL runs everything before a Sync as one implicit transaction, so
 * `set_config(…, true)` in the first step scopes the following ones and is gone after the Sync.
 * Parameters stay real bind parameters (nothing is spliced into SQL text).
 *
 * It plugs into node-postgres as a "submittable" (the interface pg-cursor uses); the client hands
 * it the backend's messages until ReadyForQuery. Resolves with the rows of every step, in order.
 */
export class PipelinedQuery {
  readonly promise: Promise<Row[][]>;
  private resolve!: (rows: Row[][]) => void;
  private reject!: (err: Error) => void;
  private step = 0;
  private fields: Field[] = [];
  private parsers: ((value: string) => unknown)[] = [];
  private readonly rows: Row[][];
  private failed = false;
  private connection: object | undefined;
  /** Named statements this query parses; recorded as prepared only once the server confirmed them. */
  private readonly parsing: string[] = [];

  constructor(private readonly steps: readonly Step[]) {
    this.rows = steps.map(() => []);
    this.promise = new Promise<Row[][]>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  /** Called by pg.Client when it is this query's turn on the connection. */
  submit(connection: any): Error | null {
    this.connection = connection;
    let known = prepared.get(connection);
    if (!known) prepared.set(connection, (known = new Map()));
    connection.stream.cork?.();
    try {
      // Over the bound: the least recently used go first (the server handles the Close before
      // anything after it; a step below that needs one again parses it again).
      for (const name of known.keys()) {
        if (known.size < PREPARED_PER_CONNECTION) break;
        known.delete(name);
        connection.close({ type: "S", name });
      }
      for (const name of toClose.get(connection)?.splice(0) ?? []) connection.close({ type: "S", name });
      this.steps.forEach((step) => {
        const name = preparedName(step);
        if (name === undefined) {
          connection.parse({ text: step.text, types: [] }); // the unnamed statement: replaced by the next one
        } else if (known.delete(name)) {
          known.set(name, true); // most recently used
        } else {
          // A failed earlier attempt may have left the statement half-known; closing a statement
          // that does not exist is not an error, so Close + Parse is always safe.
          connection.close({ type: "S", name });
          connection.parse({ text: step.text, name, types: [] });
          this.parsing.push(name);
        }
        connection.bind({ statement: name, values: step.params.map(toWireValue) });
        // Described so its rows can be decoded; a statement without rows answers NoData (ignored).
        if (!step.discard) connection.describe({ type: "P", name: "" });
        connection.execute({ portal: "", rows: 0 });
      });
      connection.sync();
    } finally {
      connection.stream.uncork?.();
    }
    return null;
  }

  handleRowDescription(msg: { fields: Field[] }): void {
    this.fields = msg.fields;
    this.parsers = msg.fields.map((f) => pg.types.getTypeParser(f.dataTypeID, "text") as (v: string) => unknown);
  }

  handleDataRow(msg: { fields: (string | null)[] }): void {
    if (this.steps[this.step]!.discard) return;
    const row: Row = {};
    msg.fields.forEach((raw, i) => {
      row[this.fields[i]!.name] = raw === null ? null : this.parsers[i]!(raw);
    });
    this.rows[this.step]!.push(row);
  }

  handleCommandComplete(): void {
    this.step++;
  }

  handleEmptyQuery(): void {
    this.step++;
  }

  handlePortalSuspended(): void {}

  handleError(err: Error): void {
    // The backend skips to the Sync and rolls the implicit transaction back; pg routes the
    // following ReadyForQuery to the next query in its queue, so we settle now.
    this.failed = true;
    // Whatever failed (a plan invalidated by another instance's migration: "cached plan must not
    // change result type"), its statements are closed with the next pipeline and parsed afresh
    // when used again (a statement parsed before the error is prepared on the server, untracked).
    // (A query failed before it was submitted — its connection lost while it waited — prepared nothing.)
    const connection = this.connection;
    if (connection) {
      const names = this.steps.map(preparedName).filter((name) => name !== undefined);
      for (const name of names) prepared.get(connection)?.delete(name);
      toClose.get(connection)?.push(...names) ?? toClose.set(connection, names);
    }
    this.reject(err);
  }

  handleReadyForQuery(): void {
    if (!this.failed) {
      const known = prepared.get(this.connection!)!;
      for (const name of this.parsing) known.set(name, true);
      this.resolve(this.rows);
    }
  }

  handleCopyInResponse(connection: any): void {
    connection.sendCopyFail("bulkhead: COPY is not supported here");
  }

  handleCopyData(): void {}
}
