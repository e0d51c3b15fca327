/**
 * The service's log destination: forwards every JSON line to the real destination and keeps the
 * most recent ones in memory, so the readiness check can look at what was actually logged.
 */
export class LogTap {
  // A ring: writing a line is O(1) however many are kept (it runs on every request).
  private readonly lines: string[] = [];
  private next = 0;

  constructor(
    private readonly destination: NodeJS.WritableStream | undefined,
    private readonly keep = 2_000,
  ) {}

  write(line: string): boolean {
    this.lines[this.next] = line;
    this.next = (this.next + 1) % this.keep;
    this.destination?.write(line);
    return true;
  }

  /** Recent log lines, oldest first, parsed. */
  recent(): Record<string, unknown>[] {
    const ordered = this.lines.length < this.keep ? this.lines : [...this.lines.slice(this.next), ...this.lines.slice(0, this.next)];
    return ordered.flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
  }
}
