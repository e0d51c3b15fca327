/**
 * The service's log destination: forwards every JSON line to the real destination and keeps the
 * most recent ones in memory, so the readiness check can look at what was actually logged.
 */
export class LogTap {
  private readonly lines: string[] = [];

  constructor(
    private readonly destination: NodeJS.WritableStream | undefined,
    private readonly keep = 2_000,
  ) {}

  write(line: string): boolean {
    this.lines.push(line);
    if (this.lines.length > this.keep) this.lines.splice(0, this.lines.length - this.keep);
    this.destination?.write(line);
    return true;
  }

  /** Recent log lines, parsed. */
  recent(): Record<string, unknown>[] {
    return this.lines.flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
  }
}
