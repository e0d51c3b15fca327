import { spawn } from "node:child_process";
import { cpus } from "node:os";
import { mkdirSync, writeFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { openBulkhead } from "../src/bulkhead.js";
import { PgliteDb } from "../src/db/pglite-db.js";

/**
 * How long the test suite takes, and why: `npm test` on PGlite alone (no server variables set),
 * timed end to end, and in the same run the cost of one in-memory Bulkhead open — created and
 * migrated from scratch (how every test opened one before) against copied from the process's
 * migrated image (how they open now), alternated. Writes bench/results/test-suite.json.
 *
 *   npm run bench:test-suite            # both
 *   npm run bench:test-suite -- --opens # the open comparison only (seconds, not minutes)
 */
const opensOnly = process.argv.includes("--opens");

async function timeOpens(rounds: number) {
  const fresh: number[] = [];
  const copied: number[] = [];
  await (await openBulkhead({ database: "memory://", env: {} })).bulkhead.close(); // the image, and the WebAssembly compiled once
  for (let i = 0; i < rounds; i++) {
    let t = performance.now();
    const f = await PgliteDb.open("memory://", "bulkhead");
    const { migrate, ensurePgvector } = await import("../src/db/migrations.js");
    for (const role of ["bulkhead_app", "bulkhead_data"]) await f.exec(`DO $$ BEGIN CREATE ROLE ${role} NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$`);
    const owner = f.owner;
    const vectorSchema = await ensurePgvector(owner);
    await migrate({ ...owner, transaction: async (fn) => { await owner.query("BEGIN"); try { const r = await fn(owner); await owner.query("COMMIT"); return r; } catch (e) { await owner.query("ROLLBACK"); throw e; } } }, { schema: "bulkhead", runtimeRole: "bulkhead_app", dataRole: "bulkhead_data", vectorSchema });
    fresh.push(performance.now() - t);
    await f.close();
    t = performance.now();
    const { bulkhead } = await openBulkhead({ database: "memory://", env: {} });
    copied.push(performance.now() - t);
    await bulkhead.close();
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  return { rounds, freshMedianMs: Math.round(median(fresh)), copiedMedianMs: Math.round(median(copied)), freshMs: fresh.map(Math.round), copiedMs: copied.map(Math.round) };
}

function timeSuite(): Promise<{ seconds: number; summary: string[] }> {
  const env = { ...process.env };
  for (const k of ["DATABASE_URL", "DATABASE_DATA_URL", "DATABASE_OWNER_URL", "CI"]) delete env[k];
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, ["node_modules/vitest/vitest.mjs", "run"], { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      process.stdout.write(".");
    });
    child.stderr.on("data", () => {});
    child.on("error", reject);
    child.on("close", (code) => {
      const plain = out.replace(/\u001b\[[0-9;]*m/g, "");
      const summary = plain.split("\n").filter((l) => /^\s*(Test Files|Tests|Duration)\s/.test(l)).map((l) => l.trim());
      if (code !== 0) console.error(`\nvitest exited ${code}`);
      resolve({ seconds: Math.round((performance.now() - started) / 1000), summary });
    });
  });
}

const opens = await timeOpens(5);
console.log("open, fresh vs copied (median ms):", opens.freshMedianMs, opens.copiedMedianMs);
const suite = opensOnly ? undefined : await timeSuite();
if (suite) console.log(`\nnpm test on PGlite alone: ${suite.seconds} s`, suite.summary);
mkdirSync("bench/results", { recursive: true });
const file = opensOnly ? "bench/results/test-suite-opens.json" : "bench/results/test-suite.json";
writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), cpus: cpus().length, node: process.version, opens, ...(suite ? { pgliteOnly: suite } : {}) }, null, 2) + "\n");
console.log("wrote", file);
