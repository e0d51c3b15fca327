/**
 * Money in integers. Usage is metered in pico-dollars (1e-12 USD): every default price is an
 * exact whole number of them per token or per query, so a million tiny events sum exactly.
 * Allocations are whole cents. Conversions to floating-point USD happen only for display.
 */
export const PICO_PER_USD = 1_000_000_000_000n;
export const PICO_PER_CENT = 10_000_000_000n;

/**
 * Bounds of every metered or monetary input. They are far above any real use and low enough that
 * no product of them can leave the ledger's bigint columns (2^63 − 1 ≈ 9.2e18 pico-dollars):
 * 1e8 tokens × $10 per 1K tokens = 1e18 pico; 1e5 vector queries × $10 = 1e18 pico.
 * Monthly sums are computed as numeric in the database and as BigInt here, so they cannot overflow.
 */
export const LIMITS = Object.freeze({
  /** Tokens one call may report (embedding, LLM, input or output): more than any model's request. */
  tokensPerCall: 100_000_000,
  /** Vector queries one `trackQueryCost` call may report. */
  vectorQueriesPerCall: 100_000,
  /** Highest price per 1K tokens and per vector query, USD. */
  unitPriceUsd: 10,
  /** Highest fixed cost, invoice line or allocation total, USD per month. */
  amountUsd: 1_000_000_000,
  /** Highest allocation weight (weights are relative: 30 and 70, or 0.3 and 0.7). */
  weight: 1_000_000_000_000,
});

/** USD price → pico-USD, refusing prices finer than a pico-dollar (they could not be summed exactly). */
export function usdToPico(usd: number, what: string, max: number = LIMITS.unitPriceUsd): bigint {
  const pico = usd * 1e12;
  const rounded = Math.round(pico);
  if (!Number.isFinite(usd) || usd < 0 || usd > max || Math.abs(pico - rounded) > 1e-6 * Math.max(1, Math.abs(pico))) {
    throw new RangeError(`${what} must be a price in USD from 0 to ${max} with at most 12 decimal places, got ${usd}`);
  }
  return BigInt(rounded);
}

export const picoToUsd = (pico: bigint): number => Number(pico) / 1e12;
export const centsToUsd = (cents: bigint | number): number => Number(cents) / 100;

/** USD amount → whole cents (half away from zero), for invoices and fixed costs. */
export function usdToCents(usd: number, what: string): bigint {
  if (!Number.isFinite(usd) || usd < 0 || usd > LIMITS.amountUsd) throw new RangeError(`${what} must be an amount in USD from 0 to ${LIMITS.amountUsd}, got ${usd}`);
  return BigInt(Math.round(usd * 100));
}

/**
 * Splits `total` (integer units) in proportion to `weights` with the largest-remainder method:
 * every share is floor(total × w / Σw), and the units left over go, one each, to the largest
 * fractional remainders (ties by key order). The shares always add up to `total` exactly.
 */
export function largestRemainder(total: bigint, weights: ReadonlyMap<string, bigint>): Map<string, bigint> {
  const sum = [...weights.values()].reduce((a, b) => a + b, 0n);
  if (sum <= 0n) throw new RangeError("weights must add up to more than zero");
  const shares = new Map<string, bigint>();
  const remainders: { key: string; rem: bigint }[] = [];
  let given = 0n;
  for (const [key, w] of weights) {
    if (w < 0n) throw new RangeError(`weight of ${key} is negative`);
    const exact = total * w;
    const share = exact / sum;
    shares.set(key, share);
    given += share;
    remainders.push({ key, rem: exact % sum });
  }
  remainders.sort((a, b) => (a.rem === b.rem ? (a.key < b.key ? -1 : 1) : a.rem > b.rem ? -1 : 1));
  for (let i = 0; given < total; i++, given++) {
    const { key } = remainders[i % remainders.length]!;
    shares.set(key, shares.get(key)! + 1n);
  }
  return shares;
}

/** Converts a decimal weight from 0 to `LIMITS.weight` (e.g. 30.5 or 0.0007) to an integer with 9 decimals of precision. */
export function weightToUnits(w: number): bigint {
  if (!Number.isFinite(w) || w < 0 || w > LIMITS.weight) throw new RangeError(`must be a number from 0 to ${LIMITS.weight}, got ${w}`);
  return BigInt(Math.round(w * 1e9));
}
