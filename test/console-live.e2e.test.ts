// The console in real Chromium: the ledger page shows the signed-in organization's own figures
// (another organization's larger, even tampered, chain changes nothing of them); a run page updated
// live keeps the reader's place (the same nodes, place on screen, text selection, focus and opened
// details) while new tool calls appear; an approval's history shows who was asked, the delivery to a
// webhook on a loopback port, a refused reviewer, and who answered from where.
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Warden } from "agent-warden";
import { createWardenServer, type WardenServer } from "agent-warden/server";

const CHROMIUM = "/usr/bin/chromium";

let dir: string;
let server: WardenServer;
let url: string;
const keys: Record<string, string> = {};
let browser: Browser;
let hook: Server;
const hooked: string[] = [];
let warden: Warden;
const pageErrors: string[] = [];

async function api(method: string, path: string, key: string, body?: unknown) {
  const response = await fetch(`${url}${path}`, { method, headers: { authorization: `Bearer ${key}`, ...(body !== undefined && { "content-type": "application/json" }) }, ...(body !== undefined && { body: JSON.stringify(body) }) });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as any) : undefined };
}

async function signIn(key: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  context.setDefaultTimeout(10_000);
  const page = await context.newPage();
  page.on("pageerror", (error) => pageErrors.push(error.message));
  await page.goto(`${url}/`);
  await page.getByLabel("API key").fill(key);
  await page.keyboard.press("Enter");
  await page.locator("#runs-table").waitFor();
  return page;
}

const setHash = (page: Page, hash: string) => page.evaluate((value) => ((globalThis as any).location.hash = value), hash);

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium is not installed at ${CHROMIUM}: the console's end-to-end tests need a real browser (apt-get install chromium).`);
  dir = mkdtempSync(join(tmpdir(), "warden-console-live-"));
  hook = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")));
    request.on("end", () => {
      hooked.push(body);
      response.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => hook.listen(0, "127.0.0.1", resolve));
  const channels = { webhooks: [{ id: "ops-hook", url: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`, secret: `whsec_${randomBytes(32).toString("base64")}` }] };
  server = createWardenServer({ db: join(dir, "warden.db"), heartbeatInterval: 500, channels, onError: (error) => console.error(error) });
  keys.acme = (await server.store.createKey({ org: "acme", role: "admin", name: "alice" })).key;
  keys.agent = (await server.store.createKey({ org: "acme", role: "agent", name: "billing agents" })).key;
  keys.globex = (await server.store.createKey({ org: "globex", role: "admin", name: "gina" })).key;
  keys.bob = (await server.store.createKey({ org: "acme", role: "reviewer", name: "bob", groups: ["leads"] })).key;
  keys.mallory = (await server.store.createKey({ org: "acme", role: "reviewer", name: "mallory", groups: ["support"] })).key;
  ({ url } = await server.listen(0));
  // globex's chain is much longer than acme's: a page mixing organizations would show it.
  for (let i = 0; i < 40; i++) await server.store.createKey({ org: "globex", role: "reviewer", name: `reviewer-${i}` });
  warden = new Warden({ agentId: "billing-agent", url, apiKey: keys.agent!, store: ":memory:", remote: { cacheDir: join(dir, "agent-cache"), flushInterval: 50 } });
  expect(await warden.ready()).toBe(true);
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"] });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await warden?.shutdown();
  await server?.close();
  await new Promise((resolve) => hook?.close(resolve));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("console pages in a browser", () => {
  test("ledger: the organization's own entries, head and checkpoints; another organization's chain changes none of them", async () => {
    const page = await signIn(keys.acme!);
    const own = (await api("GET", "/v1/ledger/verify", keys.acme!)).body;
    const theirs = (await api("GET", "/v1/ledger/verify", keys.globex!)).body;
    expect(theirs.entries).toBeGreaterThan(own.entries + 30);
    await setHash(page, "#/ledger");
    const status = page.locator("#ledger-status");
    await status.waitFor();
    expect(await status.textContent()).toContain(`Verified up to entry ${own.head.seq}: all ${own.entries} entries of acme`);
    expect(own.head.seq).toBe(own.entries);
    const fact = (name: string) => page.locator(`#ledger-facts [data-fact="${name}"]`).textContent();
    expect(await fact("org")).toBe("acme");
    expect(await fact("entries")).toBe(String(own.entries));
    expect(await fact("checkpoints")).toBe(String(own.checkpoints));
    const shown = `${await status.textContent()} ${await fact("entries")} ${await fact("checkpoints")}`;
    expect(shown).not.toMatch(new RegExp(`\\b(${theirs.entries}|${own.entries + theirs.entries})\\b`));

    // Tampering with globex's chain: acme's page still verifies, with the same figures; globex's names its first bad entry.
    const db = new DatabaseSync(join(dir, "warden.db"));
    db.prepare("UPDATE org_ledger SET data = ? WHERE org = 'globex' AND seq = 3").run('{"tampered":true}');
    db.close();
    await page.getByRole("button", { name: "Verify again" }).click();
    await expect.poll(() => status.textContent()).toContain(`all ${own.entries} entries of acme`);
    expect(await status.getAttribute("data-ok")).toBe("true");
    const globex = await signIn(keys.globex!);
    await setHash(globex, "#/ledger");
    await expect.poll(() => globex.locator("#ledger-status").getAttribute("data-ok")).toBe("false");
    expect(await globex.locator("#ledger-status").textContent()).toContain("first bad entry is 3");
    expect(await globex.locator("main").textContent()).toContain("globex's entries before it verify (2)");
    await page.context().close();
    await globex.context().close();
  });

  test("a live run page updates in place: nodes, scroll, selection, focus and opened details stay while calls arrive", async () => {
    const page = await signIn(keys.acme!);
    let runId = "";
    let more!: () => void;
    let finish!: () => void;
    const moreGate = new Promise<void>((resolve) => (more = resolve));
    const finishGate = new Promise<void>((resolve) => (finish = resolve));
    const running = warden.run({ task: "reconcile invoices" }, async (run) => {
      runId = run.runId;
      for (let i = 0; i < 30; i++) await run.tool("read_invoice", { invoice: `INV-${1000 + i}`, note: `line ${i} of the reconciliation` }, () => ({ ok: true, i }));
      await moreGate;
      for (let i = 30; i < 36; i++) await run.tool("write_ledger", { invoice: `INV-${1000 + i}` }, () => "ok");
      await finishGate;
    });
    await expect.poll(async () => runId && (await api("GET", `/v1/runs/${runId}`, keys.acme!)).body?.toolCalls?.length, { timeout: 10_000 }).toBe(30);

    await setHash(page, `#/runs/${runId}`);
    await expect.poll(() => page.locator("h2").first().textContent()).toContain("(30)");
    // The reader opens the 12th call, scrolls it into view, selects part of its input, and focuses the 20th call's summary.
    const opened = page.locator("details[data-tool-call-id]").nth(11);
    const openedId = (await opened.getAttribute("id"))!;
    const focusedId = (await page.locator("details[data-tool-call-id]").nth(19).getAttribute("id"))!;
    await opened.locator("summary").click();
    await opened.locator("pre.json").first().scrollIntoViewIfNeeded();
    const before = await page.evaluate(
      ({ openedId, focusedId }) => {
        const g = globalThis as any;
        const details = g.document.getElementById(openedId);
        details.wardenMarker = "kept";
        const pre = details.querySelector("pre.json");
        const textNode = pre.firstChild;
        const range = g.document.createRange();
        const start = textNode.data.indexOf("line 11");
        range.setStart(textNode, start);
        range.setEnd(textNode, start + "line 11 of the reconciliation".length);
        g.getSelection().removeAllRanges();
        g.getSelection().addRange(range);
        g.document.getElementById(focusedId).querySelector("summary").focus({ preventScroll: true });
        return { top: Math.round(details.getBoundingClientRect().top), selected: String(g.getSelection()) };
      },
      { openedId, focusedId },
    );
    expect(before.selected).toBe("line 11 of the reconciliation");
    expect(await page.evaluate(() => (globalThis as any).scrollY)).toBeGreaterThan(200);

    more();
    await expect.poll(() => page.locator("h2").first().textContent(), { timeout: 10_000 }).toContain("(36)");
    finish();
    await running;
    await expect.poll(() => page.locator("section.run > h1 .badge, section.run > h1 [class*=badge]").first().textContent(), { timeout: 10_000 }).toMatch(/Completed/i);

    const after = await page.evaluate(
      ({ openedId }) => {
        const g = globalThis as any;
        const details = g.document.getElementById(openedId);
        const selection = g.getSelection();
        return {
          sameNode: details.wardenMarker === "kept",
          open: details.open,
          top: Math.round(details.getBoundingClientRect().top),
          selected: String(selection),
          selectionInside: selection.rangeCount > 0 && details.contains(selection.getRangeAt(0).startContainer),
          focused: g.document.activeElement?.closest("details")?.id,
          calls: g.document.querySelectorAll("details[data-tool-call-id]").length,
        };
      },
      { openedId, focusedId },
    );
    // The run's facts above it grew (ended, duration): the opened call stays where the reader had it on screen.
    const { top, ...kept } = after;
    expect(Math.abs(top - before.top)).toBeLessThanOrEqual(1);
    expect(kept).toEqual({ sameNode: true, open: true, selected: before.selected, selectionInside: true, focused: focusedId, calls: 36 });
    expect(pageErrors).toEqual([]);
    await page.context().close();
  });

  test("an approval's history: who was asked, the webhook delivery, a refused reviewer, and who answered from where", async () => {
    const policies = { version: 1, default: "allow", policies: [{ id: "two-for-refunds", when: { tool: "refund" }, action: "require_approval", approval: { approvers: 2, from: ["alice", "group:leads"] } }] };
    expect((await api("PUT", "/v1/policies", keys.acme!, { policies })).status).toBe(201);
    const asked = await api("POST", "/v1/approvals", keys.agent!, { toolCallId: "tc_history1", runId: "run_history1", agentId: "billing-agent", toolName: "refund", policyId: "two-for-refunds", payload: { amount: 9000 }, timeoutMs: 600_000 });
    expect(asked.status).toBe(201);
    const approvalId = asked.body.approvalId as string;
    expect((await api("POST", `/v1/approvals/${approvalId}/approve`, keys.mallory!, { reason: "lgtm" })).status).toBe(403);

    const page = await signIn(keys.acme!);
    await setHash(page, "#/approvals");
    const card = page.locator(`#approval-${approvalId}`);
    await card.waitFor();
    expect(await card.textContent()).toContain("2 of: alice, group:leads");
    await card.getByLabel("Reason for your decision").fill("order checked");
    await card.getByRole("button", { name: "Approve" }).click();
    await expect.poll(() => page.locator(`#approval-${approvalId} [data-field="approved-by"]`).textContent()).toBe("alice (1 of 2)");
    expect(await page.locator(`#approval-${approvalId}`).getAttribute("data-status")).toBe("pending");

    expect((await api("POST", `/v1/approvals/${approvalId}/approve`, keys.bob!, { reason: "second pair of eyes" })).body).toMatchObject({ status: "approved", reviewer: "alice, bob" });
    await expect.poll(() => hooked.filter((body) => body.includes(approvalId)).length, { timeout: 10_000 }).toBe(2);

    await setHash(page, "#/approvals?status=approved");
    const decided = page.locator(`#approval-${approvalId}`);
    await decided.waitFor();
    await decided.locator("details[data-history] summary").click();
    const items = decided.locator(`#history-${approvalId} li`);
    await expect.poll(() => items.count(), { timeout: 10_000 }).toBeGreaterThanOrEqual(7);
    const byKind = async (kind: string) => (await decided.locator(`#history-${approvalId} li[data-kind="${kind}"]`).allTextContents()).join(" | ");
    expect(await byKind("requested")).toContain("Requested by billing-agent under policy two-for-refunds");
    expect(await byKind("asked")).toContain("Asked of alice, group:leads (2 must approve)");
    expect(await byKind("delivery")).toMatch(/Request sent to webhook ops-hook: delivered at .*1 attempt/);
    expect(await byKind("delivery")).toMatch(/Outcome sent to webhook ops-hook: delivered/);
    expect(await byKind("refused")).toContain("Refused: mallory through the API may not answer (not among the policy's reviewers)");
    expect(await byKind("vote")).toContain("Approved by alice in the console: “order checked”");
    expect(await byKind("decided")).toContain("Approved by alice, bob through the API: “second pair of eyes”");
    expect(pageErrors).toEqual([]);
    await page.context().close();
  });
});
