/**
 * The service as benchmarks run it: `bulkhead serve` (built) in a process of its own on the
 * PostgreSQL server, in a fresh schema, with the first admin key it prints.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import pg from "pg";

export interface BenchService {
  base: string;
  admin: string;
  process: ChildProcess;
  /** A JSON call with a key; throws on any answer but 2xx. */
  call(method: string, path: string, key: string, body?: unknown): Promise<any>;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts the service on `port` in `schema` (dropped first). `bin` runs another build (an older
 * commit's dist/cli/main.js, for a same-day A/B); BENCH_SERVER_NODE_OPTIONS="--cpu-prof
 * --cpu-prof-dir=/tmp/prof" profiles it.
 */
export async function startService(options: { schema: string; port: number; bin?: string }): Promise<BenchService> {
  const owner = new pg.Client({ connectionString: process.env.DATABASE_OWNER_URL });
  await owner.connect();
  await owner.query(`DROP SCHEMA IF EXISTS ${options.schema} CASCADE`);
  await owner.end();

  const nodeArgs = process.env.BENCH_SERVER_NODE_OPTIONS?.split(" ").filter(Boolean) ?? [];
  const bin = options.bin ?? join(import.meta.dirname, "..", "dist", "cli", "main.js");
  // One instance, its rate limiter in memory (as the reports say), even where REDIS_URL is set for the tests.
  const { REDIS_URL: _redis, ...env } = process.env;
  const child = spawn(process.execPath, [...nodeArgs, bin, "serve", "--port", String(options.port)], {
    env: { ...env, BULKHEAD_SCHEMA: options.schema },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += d));
  const stop = async () => {
    if (child.exitCode !== null) return;
    child.kill("SIGTERM");
    await new Promise((r) => child.on("exit", r));
  };
  const base = `http://127.0.0.1:${options.port}`;
  try {
    for (let i = 0; i < 300 && !(await fetch(`${base}/healthz`).then((r) => r.ok, () => false)); i++) await sleep(100);
    // The first admin key is printed once the service listens: wait for the line, not just the port.
    for (let i = 0; i < 100 && !/bh_admin_/.test(stderr); i++) await sleep(100);
    const admin = /bh_admin_[A-Za-z0-9_-]+/.exec(stderr)?.[0];
    if (!admin) throw new Error(`the server printed no admin key:\n${stderr}`);
    const call = async (method: string, path: string, key: string, body?: unknown) => {
      const res = await fetch(base + path, { method, headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
      return res.json() as Promise<any>;
    };
    return { base, admin, process: child, call, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
