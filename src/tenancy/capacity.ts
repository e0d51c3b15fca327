/** How full one shared index is, read from the live registry. */
export interface IndexCapacity {
  index: string;
  used: number;
  max: number;
  free: number;
  /** Namespaces at which the index reports `warning` (72 of 90 by default). */
  alertAt: number;
  /** Namespaces at which the next shared index is provisioned ahead of need (81 of 90). */
  provisionAt: number;
  /** used / max, 0..1. */
  utilization: number;
  /** healthy below alertAt, warning from alertAt, critical when full (new tenants go elsewhere). */
  status: "healthy" | "warning" | "critical";
}

/** `max × fraction`, rounded down like the reference's `int(...)`, never below 1. */
export const thresholdCount = (max: number, fraction: number) => Math.max(1, Math.floor(max * fraction + 1e-9));

export function describeCapacity(index: string, used: number, max: number, alertFraction: number, provisionFraction: number): IndexCapacity {
  const alertAt = thresholdCount(max, alertFraction);
  const provisionAt = thresholdCount(max, provisionFraction);
  return {
    index,
    used,
    max,
    free: Math.max(0, max - used),
    alertAt,
    provisionAt,
    utilization: used / max,
    status: used >= max ? "critical" : used >= alertAt ? "warning" : "healthy",
  };
}
