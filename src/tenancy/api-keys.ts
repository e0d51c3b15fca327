import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Db, Queryable } from "../db/db.js";
import { AuthenticationError, BulkheadError, TenantNotFoundError, ValidationError } from "../errors.js";
import { assertStorableText } from "../storable-text.js";
import type { AuditLog } from "./audit-log.js";
import { changeChannel, type ChangeFeedHandlers } from "./change-feed.js";
import { assertTenantId } from "./tenant.js";
import { TenantCache } from "./tenant-cache.js";

export type KeyKind = "tenant" | "admin";
export type Scope = "read" | "write";
export const SCOPES: readonly Scope[] = ["read", "write"];

/** Recognisable prefixes: a leaked key says what it is (and secret scanners can find it). */
export const KEY_PREFIX: Record<KeyKind, string> = { tenant: "bh_tenant_", admin: "bh_admin_" };

/** What is known about a key; never the key itself. */
export interface ApiKeyInfo {
  keyId: string;
  kind: KeyKind;
  /** The one tenant a tenant key belongs to; null for admin keys. */
  tenantId: string | null;
  scopes: Scope[];
  name: string;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

/** A key as created: the only time `key` is ever shown. */
export interface CreatedKey extends ApiKeyInfo {
  key: string;
}

interface KeyRow {
  id: string;
  kind: KeyKind;
  tenant: string | null;
  scopes: Scope[];
  name: string;
  hash: Buffer | Uint8Array;
  created_at: Date | string;
  last_used_at: Date | string | null;
  revoked_at: Date | string | null;
}

const KEY_PATTERN = /^bh_(tenant|admin)_([a-f0-9]{16})_([A-Za-z0-9_-]{43})$/;
const COLUMNS = "id, kind, tenant, scopes, name, hash, created_at, last_used_at, revoked_at";
/** `last_used_at` is written at most this often per key, so authentication is not a write per request. */
const LAST_USED_RESOLUTION_MS = 60_000;

const sha256 = (text: string) => createHash("sha256").update(text).digest();

function toInfo(r: KeyRow): ApiKeyInfo {
  return {
    keyId: r.id,
    kind: r.kind,
    tenantId: r.tenant,
    // Scopes are tenant-data permissions; an admin key reaches the admin API only, so it shows none.
    scopes: r.kind === "admin" ? [] : [...r.scopes],
    name: r.name,
    createdAt: new Date(r.created_at),
    lastUsedAt: r.last_used_at === null ? null : new Date(r.last_used_at),
    revokedAt: r.revoked_at === null ? null : new Date(r.revoked_at),
  };
}

function assertScopes(scopes: unknown): asserts scopes is Scope[] {
  if (!Array.isArray(scopes) || scopes.length === 0 || scopes.some((s) => !SCOPES.includes(s as Scope)) || new Set(scopes).size !== scopes.length) {
    throw new ValidationError("scopes", `must be a non-empty list of distinct scopes from ${SCOPES.join(", ")}, got ${JSON.stringify(scopes)}`);
  }
}

/**
 * API keys: tenant keys (one tenant, scopes read/write) and admin keys. Stored as SHA-256 hashes
 * (the keys are 256 random bits, so a fast hash is enough — there is nothing to brute-force),
 * looked up by their non-secret id, compared in constant time. Lookups are cached; every create,
 * rotate and revoke is announced to all instances (as tenant changes are), so a revoked key stops
 * working everywhere at commit.
 */
export class ApiKeyStore {
  private readonly cache: TenantCache<KeyRow>;
  private readonly lastUsedWritten = new Map<string, number>();
  private readonly channel: string;

  constructor(
    private readonly db: Db,
    private readonly audit: AuditLog,
    cacheTtlMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.cache = new TenantCache<KeyRow>(cacheTtlMs, now, false);
    this.channel = changeChannel(db.schema);
  }

  /** Change-feed handling for `key:<id>` notifications. */
  readonly feedHandlers: ChangeFeedHandlers = {
    changed: (keyId) => this.cache.invalidate(keyId),
    lost: () => {
      this.cache.bypass = true;
      this.cache.clear();
    },
    restored: () => {
      this.cache.bypass = false;
      this.cache.clear();
    },
  };

  /**
   * Creates a key and returns it — the only time the secret is available.
   *
   * @example
   * const { key } = await bh.keys.createKey("tenant", { tenantId: "tenant-001", scopes: ["read"], name: "search frontend" }, "admin:…");
   */
  async createKey(kind: KeyKind, options: { tenantId?: string; scopes?: Scope[]; name?: string }, actor: string): Promise<CreatedKey> {
    if (kind !== "tenant" && kind !== "admin") throw new ValidationError("kind", `must be "tenant" or "admin", got ${JSON.stringify(kind)}`);
    const scopes = options.scopes ?? [...SCOPES];
    assertScopes(scopes);
    const name = options.name ?? (kind === "admin" ? "admin" : `${options.tenantId} key`);
    if (typeof name !== "string" || name.trim().length === 0 || name.length > 200) throw new ValidationError("name", "must be a non-empty string of at most 200 characters");
    assertStorableText(name, "name");
    if (kind === "tenant") assertTenantId(options.tenantId);
    else if (options.tenantId !== undefined) throw new ValidationError("tenantId", "admin keys belong to no tenant");
    return this.db.transaction(async (tx) => {
      if (kind === "tenant" && (await tx.query("SELECT 1 FROM tenants WHERE id = $1", [options.tenantId])).length === 0) throw new TenantNotFoundError(options.tenantId!);
      const created = await this.insert(tx, kind, kind === "tenant" ? options.tenantId! : null, scopes, name.trim());
      await this.audit.record(actor, "key.create", created.tenantId ?? `key:${created.keyId}`, { keyId: created.keyId, kind, scopes }, tx);
      return created;
    });
  }

  /** Keys, newest first: all, one tenant's, or the admin keys (`tenantId: null`). Secrets are never returned. */
  async listKeys(filter: { tenantId?: string | null } = {}): Promise<ApiKeyInfo[]> {
    if (filter.tenantId) assertTenantId(filter.tenantId);
    const rows = await this.db.query<KeyRow>(
      `SELECT ${COLUMNS} FROM api_keys WHERE ($1::boolean OR tenant IS NOT DISTINCT FROM $2) ORDER BY created_at DESC, id`,
      [filter.tenantId === undefined, filter.tenantId ?? null],
    );
    return rows.map(toInfo);
  }

  /**
   * Replaces a key with a new one of the same kind, tenant, scopes and name; the old one stops
   * working at once. A revoked key cannot be rotated (409): revocation is how a leaked key is shut
   * off, and rotating it would hand out a working key in its place.
   */
  async rotateKey(keyId: string, actor: string): Promise<CreatedKey> {
    return this.db.transaction(async (tx) => {
      const old = await this.revokeIn(tx, keyId, true);
      const created = await this.insert(tx, old.kind, old.tenant, old.scopes, old.name);
      await this.audit.record(actor, "key.rotate", created.tenantId ?? `key:${created.keyId}`, { oldKeyId: keyId, keyId: created.keyId }, tx);
      return created;
    }).finally(() => this.cache.invalidate(keyId));
  }

  /** Revokes a key; it stops working at once, here and in every other instance. */
  async revokeKey(keyId: string, actor: string): Promise<ApiKeyInfo> {
    return this.db.transaction(async (tx) => {
      const row = await this.revokeIn(tx, keyId);
      await this.audit.record(actor, "key.revoke", row.tenant ?? `key:${keyId}`, { keyId }, tx);
      return toInfo(row);
    }).finally(() => this.cache.invalidate(keyId));
  }

  /** The key's owner and scopes if `presented` is a valid, unrevoked key; otherwise `AuthenticationError`. */
  async verify(presented: string | undefined, options: { cachedOnly?: boolean } = {}): Promise<ApiKeyInfo> {
    if (!presented) throw new AuthenticationError("an API key is required: send it as 'Authorization: Bearer <key>'");
    const match = KEY_PATTERN.exec(presented);
    if (!match) throw new AuthenticationError("the API key is malformed (expected bh_tenant_… or bh_admin_…)");
    const keyId = match[2]!;
    // A client flooding made-up keys may not make every attempt a database lookup: while it is over
    // its budget of failures, only keys already in the cache are checked.
    if (options.cachedOnly && !this.cache.has(keyId)) throw new AuthenticationThrottledError();
    const row = await this.cache.get(keyId, async () => (await this.db.query<KeyRow>(`SELECT ${COLUMNS} FROM api_keys WHERE id = $1`, [keyId]))[0]);
    // Compare a hash even for an unknown id, so timing does not tell which ids exist.
    const expected = row ? Buffer.from(row.hash) : Buffer.alloc(32);
    const ok = timingSafeEqual(sha256(presented), expected) && row !== undefined && row.kind === match[1];
    // Failures that cost a lookup are marked: those are what a flood of made-up keys is throttled on.
    if (!ok) throw Object.assign(new AuthenticationError("the API key is not valid"), { lookedUp: true });
    if (row.revoked_at !== null) throw Object.assign(new AuthenticationError("the API key has been revoked"), { lookedUp: true });
    this.touch(keyId);
    return toInfo(row);
  }

  /** Drops every cached key lookup (a tenant changed or was deleted: its keys may be gone). */
  forgetAll(): void {
    this.cache.clear();
  }

  /** Whether any usable admin key exists (the server creates one on first start if not). */
  async hasAdminKey(): Promise<boolean> {
    return (await this.db.query("SELECT 1 FROM api_keys WHERE kind = 'admin' AND revoked_at IS NULL LIMIT 1")).length > 0;
  }

  private async insert(tx: Queryable, kind: KeyKind, tenantId: string | null, scopes: Scope[], name: string): Promise<CreatedKey> {
    const keyId = randomBytes(8).toString("hex");
    const key = `${KEY_PREFIX[kind]}${keyId}_${randomBytes(32).toString("base64url")}`;
    const [row] = await tx.query<KeyRow>(
      `INSERT INTO api_keys (id, kind, tenant, scopes, name, hash) VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${COLUMNS}`,
      [keyId, kind, tenantId, scopes, name, sha256(key)],
    );
    await tx.query("SELECT pg_notify($1, $2)", [this.channel, `key:${keyId}`]);
    return { ...toInfo(row!), key };
  }

  /** Revokes `keyId` in `tx`; with `mustBeActive`, refuses one already revoked (rotation). */
  private async revokeIn(tx: Queryable, keyId: string, mustBeActive = false): Promise<KeyRow> {
    if (typeof keyId !== "string" || !/^[a-f0-9]{16}$/.test(keyId)) throw new ValidationError("keyId", "must be a key id (16 hex characters)");
    // The row lock makes "was it active?" and the revocation one step: two rotations of one key cannot both succeed.
    const [before] = await tx.query<{ revoked: boolean }>("SELECT revoked_at IS NOT NULL AS revoked FROM api_keys WHERE id = $1 FOR UPDATE", [keyId]);
    if (!before) throw new KeyNotFoundError(keyId);
    if (mustBeActive && before.revoked) throw new KeyRevokedError(keyId);
    const [row] = await tx.query<KeyRow>(`UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 RETURNING ${COLUMNS}`, [keyId]);
    if (!row) throw new KeyNotFoundError(keyId);
    await tx.query("SELECT pg_notify($1, $2)", [this.channel, `key:${keyId}`]);
    return row;
  }

  /** Records use at most once a minute per key, without holding up the request. */
  private touch(keyId: string): void {
    const now = this.now();
    if (now - (this.lastUsedWritten.get(keyId) ?? -Infinity) < LAST_USED_RESOLUTION_MS) return;
    this.lastUsedWritten.set(keyId, now);
    this.db.query("UPDATE api_keys SET last_used_at = now() WHERE id = $1", [keyId]).catch(() => this.lastUsedWritten.delete(keyId));
  }
}

/** No key with this id. */
export class KeyNotFoundError extends BulkheadError {
  constructor(keyId: string) {
    super("KEY_NOT_FOUND", 404, `no API key with id "${keyId}"`);
  }
}

/** The key is revoked: it cannot be rotated into a working one (create a new key instead). */
export class KeyRevokedError extends BulkheadError {
  constructor(keyId: string) {
    super("KEY_REVOKED", 409, `API key "${keyId}" is revoked; a revoked key cannot be rotated — create a new key instead`);
  }
}

/** Too many failed authentications from this client: keys not already known are refused for a moment, unchecked. */
export class AuthenticationThrottledError extends BulkheadError {
  readonly retryAfterMs = 1_000;
  constructor() {
    super("AUTHENTICATION_THROTTLED", 429, "too many requests with invalid API keys from this client; retry in a second with a valid key");
  }
}
