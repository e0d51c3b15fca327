import pg from "pg";
import { toWireValue, type Row } from "./db.js";

interface Step {
  text: string;
  params: readonly unknown[];
  /**
   * Prepare once per connection under this name and reuse it (for the small, fixed context
   * statement, so its parse and plan are not paid per query).
   */
  name?: string;
  /** Its rows are not wanted (the context statement): not described, not decoded. */
  discard?: boolean;
}

/** Named statements each physical connection has already parsed. */
const prepared = new WeakMap<object, Set<string>>();

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
    const known = prepared.get(connection);
    connection.stream.cork?.();
    try {
      this.steps.forEach((step) => {
        if (step.name && !known?.has(step.name)) {
          // A failed earlier attempt may have left the statement half-known; closing a statement
          // that does not exist is not an error, so Close + Parse is always safe.
          connection.close({ type: "S", name: step.name });
          this.parsing.push(step.name);
        }
        if (!step.name || !known?.has(step.name)) connection.parse({ text: step.text, name: step.name, types: [] });
        connection.bind({ statement: step.name, values: step.params.map(toWireValue) });
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
    this.reject(err);
  }

  handleReadyForQuery(): void {
    if (!this.failed) {
      const known = prepared.get(this.connection!) ?? new Set<string>();
      for (const name of this.parsing) known.add(name);
      prepared.set(this.connection!, known);
      this.resolve(this.rows);
    }
  }

  handleCopyInResponse(connection: any): void {
    connection.sendCopyFail("bulkhead: COPY is not supported here");
  }

  handleCopyData(): void {}
}
