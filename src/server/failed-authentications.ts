/**
 * Failed authentications per client address, over one-second windows. Anyone can send made-up
 * keys, and each unknown key id costs a database lookup; a client over its budget has further
 * keys checked against the cache only (`keys.verify(…, { cachedOnly })`) until the window passes.
 * Keys already in use keep working from the same address — behind a proxy that is every client's.
 */
export class FailedAuthentications {
  private windowStart = 0;
  private readonly counts = new Map<string, number>();

  constructor(
    private readonly perSecond = 20,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether `client` has used up its failures for this second. */
  overBudget(client: string): boolean {
    this.roll();
    return (this.counts.get(client) ?? 0) >= this.perSecond;
  }

  failed(client: string): void {
    this.roll();
    this.counts.set(client, (this.counts.get(client) ?? 0) + 1);
  }

  // One window for everyone: the map never holds more than a second's worth of addresses.
  private roll(): void {
    const now = this.now();
    if (now - this.windowStart >= 1_000) {
      this.windowStart = now;
      this.counts.clear();
    }
  }
}
