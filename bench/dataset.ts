/**
 * Seeded synthetic embeddings shaped like real ones: points drawn around overlapping topic
 * centres in a 16-dimensional latent space, projected to 384 dimensions by a fixed random matrix,
 * with a little per-dimension noise, then normalised. (Isotropic, well-separated clusters would
 * make every ANN graph either trivially right or broken, and measure nothing useful.)
 */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function gaussian(rand: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

export interface DatasetSpec {
  tenants: number;
  largest: number;
  smallest: number;
  dimension: number;
  latentDimension: number;
  topics: number;
  seed: number;
}

export const DEFAULT_SPEC: DatasetSpec = { tenants: 90, largest: 50_000, smallest: 50, dimension: 384, latentDimension: 16, topics: 64, seed: 42 };

/** Power-law tenant sizes from `largest` down to `smallest` (about 1000:1 by default). */
export function tenantSizes(spec: DatasetSpec): number[] {
  const alpha = Math.log(spec.largest / spec.smallest) / Math.log(spec.tenants);
  return Array.from({ length: spec.tenants }, (_, i) => Math.max(spec.smallest, Math.round(spec.largest * (i + 1) ** -alpha)));
}

export class EmbeddingSpace {
  private readonly projection: Float64Array;
  private readonly centres: Float64Array[];
  private readonly normal: () => number;

  constructor(private readonly spec: DatasetSpec) {
    this.normal = gaussian(rng(spec.seed));
    const { dimension: d, latentDimension: k } = spec;
    this.projection = Float64Array.from({ length: d * k }, () => this.normal() / Math.sqrt(k));
    this.centres = Array.from({ length: spec.topics }, () => Float64Array.from({ length: k }, () => this.normal()));
  }

  /** Topics a tenant writes about: a few, shared with other tenants. */
  topicsFor(tenantIndex: number): number[] {
    const r = rng(this.spec.seed * 1000 + tenantIndex);
    return Array.from({ length: 3 + Math.floor(r() * 6) }, () => Math.floor(r() * this.spec.topics));
  }

  /** One normalised embedding around one of `topics`, as float32 (what pgvector stores). */
  sample(topics: number[], rand: () => number): Float32Array {
    const normal = gaussian(rand);
    const { dimension: d, latentDimension: k } = this.spec;
    const centre = this.centres[topics[Math.floor(rand() * topics.length)]!]!;
    const z = Array.from({ length: k }, (_, j) => centre[j]! + normal());
    const v = new Float64Array(d);
    let norm = 0;
    for (let i = 0; i < d; i++) {
      let s = 0.08 * normal();
      for (let j = 0; j < k; j++) s += this.projection[i * k + j]! * z[j]!;
      v[i] = s;
      norm += s * s;
    }
    norm = Math.sqrt(norm);
    return Float32Array.from(v, (x) => x / norm);
  }
}

/** Exact top-k ids by cosine distance (vectors are normalised, so by dot product). */
export function exactTopK(data: Float32Array[], ids: string[], query: Float32Array, k: number): string[] {
  const best: { id: string; s: number }[] = [];
  for (let n = 0; n < data.length; n++) {
    const v = data[n]!;
    let s = 0;
    for (let i = 0; i < v.length; i++) s += v[i]! * query[i]!;
    if (best.length < k || s > best[best.length - 1]!.s) {
      best.push({ id: ids[n]!, s });
      best.sort((a, b) => b.s - a.s);
      if (best.length > k) best.pop();
    }
  }
  return best.map((b) => b.id);
}
