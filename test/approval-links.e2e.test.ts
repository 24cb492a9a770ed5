// One-time approval links in real Chromium: a control plane on a loopback port sends the link in its
// signed webhook; the page shows exactly what is approved; approving runs the waiting agent's call
// once; the link then refuses. The console lists channel deliveries, failures included.
import { createServer, type Server } from "node:http";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Warden } from "agent-warden";
import { createWardenServer, type WardenServer } from "agent-warden/server";

const CHROMIUM = "/usr/bin/chromium";
const SHOTS = fileURLToPath(new URL("../test-results/console/", import.meta.url));
const ORG = "acme";
const SECRET = `whsec_${randomBytes(32).toString("base64")}`;

let dir: string;
let server: WardenServer;
let url: string;
let keys: { admin: string; reviewer: string; agent: string };
let hooks: Server;
const received: { type: string; data: { approvalId: string; approvalUrl?: string } }[] = [];
let browser: Browser;
let context: BrowserContext;
let page: Page;
let warden: Warden;

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

async function until<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await fn();
    if (value !== undefined && value !== false) return value;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function api(method: string, path: string, key: string, body?: unknown) {
  const response = await fetch(`${url}${path}`, { method, headers: { Authorization: `Bearer ${key}`, ...(body !== undefined && { "Content-Type": "application/json" }) }, ...(body !== undefined && { body: JSON.stringify(body) }) });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as any) : undefined };
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium is not installed at ${CHROMIUM}: the approval link test needs a real browser (apt-get install chromium).`);
  mkdirSync(SHOTS, { recursive: true });
  dir = mkdtempSync(join(tmpdir(), "warden-links-"));
  hooks = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")));
    request.on("end", () => {
      received.push(JSON.parse(body));
      response.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => hooks.listen(0, "127.0.0.1", resolve));
  const port = await freePort();
  const down = await freePort();
  server = createWardenServer({
    db: join(dir, "warden.db"),
    heartbeatInterval: 500,
    onError: (error) => console.error(error),
    channels: {
      webhooks: [
        { id: "inbox", url: `http://127.0.0.1:${(hooks.address() as AddressInfo).port}/warden`, secret: SECRET },
        { id: "pager", url: `http://127.0.0.1:${down}/warden`, secret: SECRET, events: ["approval.requested"] },
      ],
      links: { secret: randomBytes(32).toString("hex"), baseUrl: `http://127.0.0.1:${port}`, ttl: "30m" },
      retry: { attempts: 2, initialDelay: 10, maxDelay: 20, timeout: 1000 },
    },
  });
  keys = {
    admin: (await server.store.createKey({ org: ORG, role: "admin", name: "alice" })).key,
    reviewer: (await server.store.createKey({ org: ORG, role: "reviewer", name: "bob" })).key,
    agent: (await server.store.createKey({ org: ORG, role: "agent", name: "billing agents" })).key,
  };
  ({ url } = await server.listen(port));
  const put = await api("PUT", "/v1/policies", keys.admin, {
    policies: { version: 1, default: "allow", policies: [{ id: "approve-prod-deploy", description: "Production deploys need a human", when: { tool: "deploy", "args.environment": "production" }, action: "require_approval", approval: { timeout: "10m" } }] },
  });
  expect(put.status).toBe(201);
  warden = new Warden({ agentId: "billing-agent", url, apiKey: keys.agent, store: ":memory:", remote: { cacheDir: join(dir, "agent-cache"), flushInterval: 50 } });
  expect(await warden.ready()).toBe(true);
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"] });
  context = await browser.newContext({ viewport: { width: 1000, height: 900 } });
  context.setDefaultTimeout(10_000);
  page = await context.newPage();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await warden?.shutdown();
  await server?.close();
  await new Promise((resolve) => hooks?.close(resolve));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("one-time approval links", () => {
  test("the webhook's link opens a page showing exactly what is approved; Approve runs the call once; a second use is refused", async () => {
    let ran = 0;
    const result = warden.run({ task: "ship 1.4.2", agentContext: { goal: "ship release 1.4.2" } }, (run) =>
      run.tool("deploy", { version: "1.4.2", environment: "production", token: "ghp_abcdefghijklmnopqrstuvwxyz0123456789" }, () => ++ran),
    );
    result.catch(() => {});
    const requested = await until("the webhook with its link", () => received.find((event) => event.type === "approval.requested" && event.data.approvalUrl));
    const link = requested.data.approvalUrl!;
    expect(link.startsWith(`${url}/approval-links/`)).toBe(true);

    const response = await page.goto(link);
    expect(response?.status()).toBe(200);
    expect(response?.headers()["content-security-policy"]).toContain("default-src 'none'");
    await expect(page.locator("h1").textContent()).resolves.toBe("Approval request");
    expect(await page.locator('dd[data-field="tool"]').textContent()).toBe("deploy");
    expect(await page.locator('dd[data-field="agent"]').textContent()).toBe("billing-agent");
    expect(await page.locator('dd[data-field="policy"]').textContent()).toBe("approve-prod-deploy");
    const payload = JSON.parse((await page.locator("#payload").textContent()) ?? "null");
    expect(payload).toMatchObject({ version: "1.4.2", environment: "production" });
    expect(JSON.stringify(payload)).not.toContain("ghp_abcdefghijklmnopqrstuvwxyz0123456789");
    await page.screenshot({ path: join(SHOTS, "approval-link.png"), fullPage: true });
    expect(ran).toBe(0);

    await page.locator("#reason").fill("release train 14");
    await page.getByRole("button", { name: "Approve" }).click();
    await page.locator("p.outcome").waitFor();
    expect(await page.locator("p.outcome").textContent()).toContain("approved");
    expect(await result).toBe(1);
    expect(ran).toBe(1);
    const record = (await api("GET", `/v1/approvals/${requested.data.approvalId}`, keys.reviewer)).body;
    expect(record).toMatchObject({ status: "approved", reviewer: "approval link", decisionReason: "release train 14" });

    // Second use: opening again, and re-posting the form (the browser's back + submit), are refused.
    const again = await page.goto(link);
    expect(again?.status()).toBe(410);
    expect(await page.locator("p.error").textContent()).toMatch(/cannot be used again|already used/);
    const reposted = await page.request.post(link, { form: { decision: "reject" }, headers: { origin: url } });
    expect(reposted.status()).toBe(410);
    expect((await api("GET", `/v1/approvals/${requested.data.approvalId}`, keys.reviewer)).body.status).toBe("approved");
    await page.screenshot({ path: join(SHOTS, "approval-link-used.png"), fullPage: true });
  }, 30_000);

  test("a link issued to a person records them as reviewer; a forged or expired link is refused and decides nothing", async () => {
    const result = warden.run({ task: "ship 2.0.0" }, (run) => run.tool("deploy", { version: "2.0.0", environment: "production" }, () => "deployed"));
    result.catch(() => {});
    const requested = await until("the request", () => received.find((event) => event.type === "approval.requested" && (event.data as { payload?: { version?: string } }).payload?.version === "2.0.0"));
    const { approvalId } = requested.data;

    const issued = await api("POST", `/v1/approvals/${approvalId}/links`, keys.reviewer, { to: "carol@example.com", ttl: "5m" });
    expect(issued.status).toBe(201);
    const expired = await api("POST", `/v1/approvals/${approvalId}/links`, keys.reviewer, { to: "dave@example.com", ttl: 1 });
    expect(expired.status).toBe(201);
    expect((await api("POST", `/v1/approvals/${approvalId}/links`, keys.agent, {})).status).toBe(403);

    const forged = `${issued.body.url.slice(0, -1)}${issued.body.url.endsWith("A") ? "B" : "A"}`;
    expect((await page.goto(forged))?.status()).toBe(401);
    expect(await page.locator("p.error").textContent()).toContain("not genuine");
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect((await page.goto(expired.body.url))?.status()).toBe(410);
    expect(await page.locator("p.error").textContent()).toContain("expired");
    expect((await api("GET", `/v1/approvals/${approvalId}`, keys.reviewer)).body.status).toBe("pending");

    await page.goto(issued.body.url);
    expect(await page.locator('dd[data-field="decided as"]').textContent()).toBe("carol@example.com");
    await page.getByRole("button", { name: "Reject" }).click();
    await page.locator("p.outcome").waitFor();
    await expect(result).rejects.toThrow();
    expect((await api("GET", `/v1/approvals/${approvalId}`, keys.reviewer)).body).toMatchObject({ status: "rejected", reviewer: "carol@example.com" });
  }, 30_000);

  test("the console's Channels page lists deliveries, the failed ones with their error", async () => {
    await page.goto(`${url}/`);
    await page.locator("#api-key").fill(keys.reviewer);
    await page.getByRole("button", { name: /sign in/i }).click();
    await page.locator("#nav").waitFor();
    await page.getByRole("link", { name: "Channels" }).click();
    const failed = page.locator('tr[data-target="pager"][data-status="failed"]').first();
    await failed.waitFor();
    expect(await failed.textContent()).toContain("approval.requested");
    expect(await page.locator('tr[data-target="inbox"][data-status="delivered"]').count()).toBeGreaterThan(0);
    await page.screenshot({ path: join(SHOTS, "channels.png"), fullPage: true });
  }, 30_000);
});
