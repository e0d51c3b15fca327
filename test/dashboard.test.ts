import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Bulkhead } from "../src/bulkhead.js";
import { TenantTier } from "../src/config.js";
import { buildServer } from "../src/server/app.js";
import { callAt } from "./http-call.js";
import { BACKENDS, dropTestSchemas, vec, waitFor } from "./backends.js";

/** Debian's Chromium (never a downloaded browser build); .ci/run installs it. */
const CHROMIUM = "/usr/bin/chromium";
const haveBrowser = existsSync(CHROMIUM);
if (process.env.CI && !haveBrowser) throw new Error(`CI is set but ${CHROMIUM} is missing: the dashboard's browser tests would be skipped (apt-get install chromium)`);
/** `BULKHEAD_SCREENSHOTS=docs npx vitest run test/dashboard.test.ts` writes the README's screenshots. */
const SHOTS = process.env.BULKHEAD_SCREENSHOTS === "docs" ? join(import.meta.dirname, "..", "docs", "dashboard") : undefined;

afterAll(dropTestSchemas);

// The flows in a browser on the embedded default (what `npm start` runs); the server database gets
// the same routes through the HTTP checks below, which need no browser.
const backend = BACKENDS[0]!;

describe.skipIf(!haveBrowser)(`${backend.name}: the operator's dashboard in a real browser (Debian Chromium)`, () => {
  let bh: Bulkhead;
  let app: FastifyInstance;
  let base: string;
  let browser: Browser;
  let admin: { key: string; keyId: string };
  const keys: Record<string, { key: string; keyId: string }> = {};
  const call = (method: string, path: string, key: string | undefined, body?: unknown, headers: Record<string, string> = {}) => callAt(base, method, path, key, body, headers);

  beforeAll(async () => {
    ({ bulkhead: bh } = await backend.open({ config: { dimension: 8, seriesFlushIntervalMs: 500 } }));
    app = await buildServer(bh, { logDestination: false });
    base = await app.listen({ host: "127.0.0.1", port: 0 });
    admin = await bh.keys.createKey("admin", { name: "operator" }, "test");
    for (const [id, name, tier, quota] of [
      ["acme", "Acme Corp", TenantTier.PRO, {}],
      ["globex", "Globex", TenantTier.FREE, { maxDocuments: 10 }],
      ["initech", "Initech", TenantTier.FREE, {}],
    ] as const) {
      await call("POST", "/admin/tenants", admin.key, { tenantId: id, name, tier, quota });
      keys[id] = (await call("POST", `/admin/tenants/${id}/keys`, admin.key, {})).body;
    }
    // Traffic: acme busy, globex near its document quota, initech quiet.
    await call("POST", "/v1/documents", keys.acme!.key, { documents: Array.from({ length: 40 }, (_, i) => ({ id: `a${i}`, values: vec(i) })) });
    for (let i = 0; i < 30; i++) await call("POST", "/v1/query", keys.acme!.key, { vector: vec(i), topK: 3 });
    await call("POST", "/v1/documents", keys.globex!.key, { documents: Array.from({ length: 9 }, (_, i) => ({ id: `g${i}`, values: vec(i) })) });
    await call("POST", "/v1/query", keys.globex!.key, { vector: vec(1), topK: 3 });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await bh?.close();
  });

  async function signIn(key = admin.key): Promise<Page> {
    const page = await (await browser.newContext({ viewport: { width: 1400, height: 900 } })).newPage();
    await page.goto(`${base}/dashboard`);
    await expect.poll(() => new URL(page.url()).pathname).toBe("/dashboard/sign-in");
    await page.getByLabel("Admin key").fill(key);
    await page.getByRole("button", { name: "Sign in" }).click();
    return page;
  }
  const shot = async (page: Page, name: string) => {
    if (!SHOTS) return;
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  };
  const confirm = (page: Page, form: string, tenantId: string) => page.locator(`form[action$="/actions/${form}"]`).getByLabel(`type ${tenantId} to confirm`, { exact: false });

  it("without a session: every page sends the browser to sign in, every data call and action is 401, and a tenant key cannot sign in", async () => {
    for (const path of ["/dashboard", "/dashboard/tenants/acme", "/dashboard/capacity", "/dashboard/costs", "/dashboard/readiness"]) {
      const res = await fetch(base + path, { redirect: "manual" });
      expect([path, res.status, res.headers.get("location")]).toEqual([path, 303, `/dashboard/sign-in?next=${encodeURIComponent(path)}`]);
      const fragment = await fetch(base + path, { headers: { "x-dashboard-fragment": "main" } });
      expect([path, fragment.status]).toEqual([path, 401]);
    }
    for (const path of ["/dashboard/api/tenants", "/dashboard/api/tenants/acme/series"]) expect((await fetch(base + path)).status).toBe(401);
    // An admin key as a bearer token is not a session either: the dashboard's data is for signed-in browsers.
    expect((await fetch(`${base}/dashboard/api/tenants`, { headers: { authorization: `Bearer ${admin.key}` } })).status).toBe(401);
    const action = await fetch(`${base}/dashboard/tenants/acme/actions/suspend`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "confirm=acme" });
    expect(action.status).toBe(401);
    expect((await call("GET", "/admin/tenants/acme", admin.key)).body.status).toBe("active");

    const page = await signIn(keys.acme!.key);
    await expect.poll(() => page.getByRole("alert").textContent()).toContain("a tenant key cannot open the dashboard");
    expect(new URL(page.url()).pathname).toBe("/dashboard/sign-in");
    expect(await page.context().cookies()).toEqual([]);
    await page.getByLabel("Admin key").fill("bh_admin_0000000000000000_not-a-key");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect.poll(() => page.getByRole("alert").textContent()).toMatch(/key/i);
    await shot(page, "sign-in");
    await page.context().close();
  });

  it("signs in with an admin key (kept nowhere in the browser), finds a tenant, and shows the API's numbers", async () => {
    const page = await signIn();
    await expect.poll(() => new URL(page.url()).pathname).toBe("/dashboard");
    const [cookie] = await page.context().cookies();
    expect(cookie).toMatchObject({ name: "bh_session", httpOnly: true, sameSite: "Strict", path: "/dashboard" });
    expect(cookie!.value).not.toContain(admin.keyId);
    expect(await page.evaluate("JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie")).toBe("{}{}");

    // Who is hot, who is near quota.
    const acmeRow = page.locator('tr[data-tenant="acme"]');
    await expect.poll(() => acmeRow.textContent()).toContain("hot");
    const globexRow = page.locator('tr[data-tenant="globex"]');
    await expect.poll(() => globexRow.textContent()).toContain("near quota");
    await shot(page, "tenants");
    if (SHOTS) {
      await page.setViewportSize({ width: 390, height: 844 }); // a phone
      await shot(page, "tenants-phone");
      await page.setViewportSize({ width: 1400, height: 900 });
    }

    await page.getByRole("searchbox").fill("glob");
    await page.getByRole("button", { name: "Filter" }).click();
    await expect.poll(() => page.locator("tbody tr").count()).toBe(1);
    const usage = (await call("GET", "/v1/usage", keys.globex!.key)).body;
    expect(await globexRow.locator('[data-field="documents"]').textContent()).toContain(`${usage.documents} / ${usage.quota.maxDocuments}`);
    await globexRow.getByRole("link", { name: "globex" }).click();
    await expect.poll(() => page.locator("h1").textContent()).toContain("Globex");
    const costs = (await call("GET", "/v1/costs", keys.globex!.key)).body;
    expect(Number(await page.locator('[data-field="cost"] [data-usd]').getAttribute("data-usd"))).toBe(costs.totalCost);
    expect(costs.totalCost).toBeGreaterThan(0);
    expect(await page.locator('[data-field="tier"]').textContent()).toBe("free");
    // Its charts are drawn (uPlot canvases) from the series the admin API serves.
    await expect.poll(() => page.locator(".chart canvas").count(), { timeout: 30_000 }).toBeGreaterThanOrEqual(3);
    const series = (await call("GET", "/admin/tenants/globex/series?window=1h", admin.key)).body;
    expect(series.points.reduce((n: number, p: { ok: number }) => n + p.ok, 0)).toBeGreaterThanOrEqual(2);
    await page.context().close();
  });

  it("suspends a tenant (its key is refused at once), resumes it, and rotates its key (the old one refused, the new one shown once works)", async () => {
    const page = await signIn();
    await page.goto(`${base}/dashboard/tenants/initech`);
    await confirm(page, "suspend", "initech").fill("initech");
    await page.locator('form[action$="/actions/suspend"]').getByRole("button").click();
    await expect.poll(() => page.getByRole("status").first().textContent()).toContain("Suspended");
    expect((await call("GET", "/v1/usage", keys.initech!.key)).status).toBe(403);
    await shot(page, "tenant-suspended");
    await confirm(page, "resume", "initech").fill("initech");
    await page.locator('form[action$="/actions/resume"]').getByRole("button").click();
    await expect.poll(() => page.getByRole("status").first().textContent()).toContain("Resumed");
    expect((await call("GET", "/v1/usage", keys.initech!.key)).status).toBe(200);

    const old = keys.initech!;
    await confirm(page, `keys/${old.keyId}/rotate`, "initech").fill("initech");
    await page.locator(`form[action$="/actions/keys/${old.keyId}/rotate"]`).getByRole("button").click();
    const secret = (await page.locator("#secret").textContent())!;
    expect(secret).toMatch(/^bh_tenant_[a-f0-9]{16}_/);
    expect((await call("GET", "/v1/usage", old.key)).status).toBe(401);
    expect((await call("GET", "/v1/usage", secret)).status).toBe(200);
    // Audited as the admin key that signed in, like the API's actions.
    const audit = (await call("GET", "/admin/audit?limit=20", admin.key)).body as { actor: string; action: string; target: string }[];
    for (const action of ["tenant.suspend", "tenant.resume", "key.rotate"]) expect(audit.find((a) => a.action === action && a.target === "initech")?.actor).toBe(`admin:${admin.keyId}`);
    // A wrong confirmation changes nothing.
    await page.goto(`${base}/dashboard/tenants/initech`);
    await confirm(page, "suspend", "initech").evaluate((el: { removeAttribute(name: string): void }) => el.removeAttribute("pattern"));
    await confirm(page, "suspend", "initech").fill("acme");
    await page.locator('form[action$="/actions/suspend"]').getByRole("button").click();
    await expect.poll(() => page.getByRole("alert").textContent()).toContain("type the tenant's id, initech, to confirm");
    expect((await call("GET", "/admin/tenants/initech", admin.key)).body.status).toBe("active");
    await page.context().close();
  });

  it("starts a move and watches it finish on the page, without reloading it", async () => {
    const page = await signIn();
    await page.goto(`${base}/dashboard/tenants/acme`);
    await page.locator('form[action$="/actions/move"] select[name="tier"]').selectOption("enterprise");
    await confirm(page, "move", "acme").fill("acme");
    await page.locator('form[action$="/actions/move"]').getByRole("button").click();
    await expect.poll(() => page.getByRole("status").first().textContent()).toContain("Move started");
    await shot(page, "tenant");
    // The page refreshes its main region in place (every 5 s): the tier turns to enterprise when the move switches.
    const navigations: string[] = [];
    page.on("framenavigated", (f) => navigations.push(f.url()));
    await expect.poll(() => page.locator('[data-field="tier"]').textContent(), { timeout: 30_000 }).toBe("enterprise");
    expect(await page.locator('[data-field="move"]').textContent()).toContain("No move in progress");
    expect(navigations).toEqual([]);
    expect((await call("GET", "/admin/tenants/acme", admin.key)).body).toMatchObject({ tier: "enterprise", isolation: "dedicated-index" });
    await page.context().close();
  });

  it("runs the readiness checklist and shows each line with its evidence; capacity and costs answer the operator's questions", async () => {
    const page = await signIn();
    await page.goto(`${base}/dashboard/readiness`);
    await page.getByRole("button", { name: "Run the checklist now" }).click();
    await expect.poll(() => page.locator('[data-field="readiness"]').textContent(), { timeout: 60_000 }).toMatch(/passed/);
    expect(await page.locator(".checks li").count()).toBeGreaterThan(10);
    await shot(page, "readiness");
    await page.goto(`${base}/dashboard/capacity`);
    expect(await page.locator("tr[data-index]").count()).toBeGreaterThanOrEqual(1);
    await shot(page, "capacity");
    await page.goto(`${base}/dashboard/costs`);
    expect(await page.locator("svg.bars rect").count()).toBeGreaterThanOrEqual(9);
    expect(await page.locator('tr[data-tenant="globex"]').count()).toBe(1);
    await shot(page, "costs");
    await page.context().close();
  });

  it("refuses an action without the session's CSRF token or from another site, and a signed-out session is refused everywhere", async () => {
    const page = await signIn();
    await expect.poll(() => new URL(page.url()).pathname).toBe("/dashboard");
    const csrf = (await page.locator('input[name="csrf"]').first().inputValue())!;
    const request = page.context().request;
    const noToken = await request.post(`${base}/dashboard/tenants/initech/actions/suspend`, { form: { confirm: "initech" }, maxRedirects: 0 });
    expect(noToken.status()).toBe(403);
    const wrongToken = await request.post(`${base}/dashboard/tenants/initech/actions/suspend`, { form: { confirm: "initech", csrf: csrf.slice(0, -2) + "xx" }, maxRedirects: 0 });
    expect(wrongToken.status()).toBe(403);
    const otherSite = await request.post(`${base}/dashboard/tenants/initech/actions/suspend`, { form: { confirm: "initech", csrf }, headers: { origin: "http://evil.example" }, maxRedirects: 0 });
    expect(otherSite.status()).toBe(403);
    expect((await call("GET", "/admin/tenants/initech", admin.key)).body.status).toBe("active");

    const [cookie] = await page.context().cookies();
    await page.getByRole("button", { name: "Sign out" }).click();
    await expect.poll(() => new URL(page.url()).pathname).toBe("/dashboard/sign-in");
    await page.goto(`${base}/dashboard/costs`);
    expect(new URL(page.url()).pathname).toBe("/dashboard/sign-in");
    // The old cookie, replayed, is refused: sign-out ended the session in the database.
    expect((await fetch(`${base}/dashboard/api/tenants`, { headers: { cookie: `bh_session=${cookie!.value}` } })).status).toBe(401);
    await page.context().close();
  });

  it("ends a session when its admin key is revoked", async () => {
    const second = await bh.keys.createKey("admin", { name: "temp" }, "test");
    const page = await signIn(second.key);
    await expect.poll(() => new URL(page.url()).pathname).toBe("/dashboard");
    const [cookie] = await page.context().cookies();
    const data = () => fetch(`${base}/dashboard/api/tenants`, { headers: { cookie: `bh_session=${cookie!.value}` } }).then((r) => r.status);
    expect(await data()).toBe(200);
    await call("DELETE", `/admin/keys/${second.keyId}`, admin.key);
    await waitFor("the session to end with its key", async () => (await data()) === 401);
    await page.context().close();
  });
});

// What an outside attack on the dashboard found, at the HTTP door (no browser needed), on both databases.
for (const b of BACKENDS) {
  describe(`${b.name}: the dashboard's door`, () => {
    let bh: Bulkhead;
    let app: FastifyInstance;
    let base: string;
    let admin: { key: string; keyId: string };
    let tenantKey: string;
    beforeAll(async () => {
      ({ bulkhead: bh } = await b.open({ config: { dimension: 8 } }));
      app = await buildServer(bh, { logDestination: false });
      base = await app.listen({ host: "127.0.0.1", port: 0 });
      admin = await bh.keys.createKey("admin", { name: "operator" }, "test");
      await callAt(base, "POST", "/admin/tenants", admin.key, { tenantId: "door-a", name: "A", tier: "free", quota: { requestsPerSecond: 1, burst: 0 } });
      tenantKey = (await callAt(base, "POST", "/admin/tenants/door-a/keys", admin.key, {})).body.key;
    });
    afterAll(async () => {
      await app?.close();
      await bh?.close();
    });

    const signIn = async () => {
      const res = await fetch(`${base}/dashboard/sign-in`, { method: "POST", redirect: "manual", headers: { "content-type": "application/x-www-form-urlencoded" }, body: `key=${admin.key}` });
      const cookie = res.headers.get("set-cookie")!.split(";")[0]!;
      const html = await (await fetch(`${base}/dashboard`, { headers: { cookie } })).text();
      return { cookie, csrf: /name="csrf" value="([^"]+)"/.exec(html)![1]! };
    };
    const form = (cookie: string, fields: Record<string, string>, headers: Record<string, string> = {}) => ({
      method: "POST",
      redirect: "manual" as const,
      headers: { cookie, "content-type": "application/x-www-form-urlencoded", ...headers },
      body: new URLSearchParams(fields).toString(),
    });

    it("reads no body it will not take: an anonymous 8 MB JSON body is refused unread (connection closed), a signed-in one is a 415", async () => {
      const big = JSON.stringify({ key: "x".repeat(8 * 1024 * 1024) });
      for (const path of ["/dashboard/tenants/door-a/actions/suspend", "/dashboard/costs/reconcile"]) {
        const res = await fetch(base + path, { method: "POST", headers: { "content-type": "application/json" }, body: big });
        expect([path, res.status, res.headers.get("connection")]).toEqual([path, 401, "close"]);
      }
      const signInBig = await fetch(`${base}/dashboard/sign-in`, { method: "POST", headers: { "content-type": "application/json" }, body: big });
      expect([signInBig.status, signInBig.headers.get("connection")]).toEqual([415, "close"]);
      const text = await fetch(`${base}/dashboard/sign-in`, { method: "POST", headers: { "content-type": "text/plain" }, body: "key=x" });
      expect(text.status).toBe(415);
      const tooLarge = await fetch(`${base}/dashboard/sign-in`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: `key=${"x".repeat(100_000)}` });
      expect(tooLarge.status).toBe(413);
    });

    it("answers hostile names and headers with 4xx, never 500: a bad or null Origin, built-in property names, NUL in a form value", async () => {
      const { cookie, csrf } = await signIn();
      for (const origin of ["garbage", ":::", "null", "http://evil.example"]) {
        const res = await fetch(`${base}/dashboard/tenants/door-a/actions/suspend`, form(cookie, { csrf, confirm: "door-a" }, { origin }));
        expect([origin, res.status]).toEqual([origin, 403]);
        const signInRes = await fetch(`${base}/dashboard/sign-in`, { method: "POST", headers: { origin, "content-type": "application/x-www-form-urlencoded" }, body: `key=${admin.key}` });
        expect([origin, signInRes.status]).toEqual([origin, 403]);
      }
      for (const name of ["constructor", "__proto__", "toString"]) expect((await fetch(`${base}/dashboard/assets/${name}`)).status).toBe(404);
      expect(await (await fetch(`${base}/dashboard/tenants/door-a?done=toString`, { headers: { cookie } })).text()).not.toContain("native code");
      const nul = await fetch(`${base}/dashboard/tenants/door-a/actions/move`, form(cookie, { csrf, confirm: "door-a", index: "a\u0000" }));
      expect(nul.status).toBe(400);
      expect((await callAt(base, "GET", "/admin/moves", admin.key)).body).toEqual([]);
      expect((await callAt(base, "GET", "/admin/tenants/door-a", admin.key)).body.status).toBe("active");
    });

    it("a page answering a POST (a new key's secret) does not refresh itself away", async () => {
      const { cookie, csrf } = await signIn();
      const res = await fetch(`${base}/dashboard/tenants/door-a/actions/keys/create`, form(cookie, { csrf, confirm: "door-a", name: "once" }));
      const html = await res.text();
      expect(res.status).toBe(201);
      expect(html).toMatch(/bh_tenant_[a-f0-9]{16}_/);
      expect(html).not.toContain("data-refresh-ms");
    });

    it("counts a refusal at the door once in the tenant's history", async () => {
      const statuses = await Promise.all(Array.from({ length: 12 }, () => callAt(base, "GET", "/v1/usage", tenantKey).then((r) => r.status)));
      const refused = statuses.filter((s) => s === 429).length;
      expect(refused).toBeGreaterThan(0);
      const series = (await callAt(base, "GET", "/admin/tenants/door-a/series", admin.key)).body as { points: { refused: number; refusals: { rateLimited: number } }[] };
      expect(series.points.reduce((n, p) => n + p.refused, 0)).toBe(refused);
      expect(series.points.reduce((n, p) => n + p.refusals.rateLimited, 0)).toBe(refused);
    });
  });
}
