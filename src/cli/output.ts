import { BulkheadError } from "../errors.js";

/** Exit codes of the `bulkhead` command, by what went wrong (documented in the README). */
export const EXIT = { ok: 0, failed: 1, invalid: 2, notFound: 3, conflict: 4, refused: 5, unavailable: 6 } as const;

/** The exit code for an error: scripts can tell "no such tenant" from "database down". */
export function exitCodeFor(err: unknown): number {
  if (!(err instanceof BulkheadError)) return EXIT.failed;
  if (err.status === 400 || err.code === "CONFIG_INVALID") return EXIT.invalid;
  if (err.status === 404) return EXIT.notFound;
  if (err.status === 409) return EXIT.conflict;
  if (err.status === 401 || err.status === 403 || err.status === 429) return EXIT.refused;
  if (err.status === 503) return EXIT.unavailable;
  return EXIT.failed;
}

const cell = (v: unknown): string => {
  if (v === null || v === undefined) return "–";
  if (v instanceof Date) return v.toISOString().replace(".000Z", "Z");
  if (Array.isArray(v)) return v.join(",");
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
};

/** Rows as an aligned text table with the given columns (numbers right-aligned). */
export function table(rows: readonly Record<string, unknown>[], columns: readonly string[]): string {
  if (rows.length === 0) return "(none)";
  const text = rows.map((r) => columns.map((c) => cell(r[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...text.map((t) => t[i]!.length)));
  const numeric = columns.map((c) => rows.every((r) => typeof r[c] === "number" || r[c] === null || r[c] === undefined));
  const line = (values: string[]) => values.map((v, i) => (numeric[i] ? v.padStart(widths[i]!) : v.padEnd(widths[i]!))).join("  ").trimEnd();
  return [line([...columns]), line(widths.map((w) => "-".repeat(w))), ...text.map(line)].join("\n");
}

/**
 * Where a command's output goes and what it reads: the process's streams and environment for the
 * `bulkhead` binary, buffers and a given environment when a test runs the CLI in its own process.
 */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  /** A person watches stderr: progress lines are drawn there. */
  readonly tty: boolean;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** A command that finished but failed its check (an unverified erasure, a failed doctor) sets it. */
  exitCode: number;
}

/** The binary's input and output: this process's streams and environment. */
export const processIo = (): CliIo => ({
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  tty: Boolean(process.stderr.isTTY),
  env: process.env,
  exitCode: 0,
});

/** Prints `value` as JSON (`--json`) or through `human` for people. */
export function print(io: CliIo, json: boolean | undefined, value: unknown, human: () => string): void {
  io.out(json ? `${JSON.stringify(value, null, 2)}\n` : `${human()}\n`);
}
