// The web console end to end: a real control plane on a loopback port (SQLite in a temp dir), a
// real agent (a Warden in remote mode), and Chromium driven by Playwright. Screenshots of the main
// pages go to test-results/console/.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { HaltedError, Warden } from "agent-warden";
import { createWardenServer, type WardenServer } from "agent-warden/server";

const CHROMIUM = "/usr/bin/chromium";
const SHOTS = fileURLToPath(new URL("../test-results/console/", import.meta.url));
const ORG = "acme";

const POLICIES = `version: 1
default: allow
policies:
  - id: approve-prod-deploy
    description: Production deploys need a human
    when:
      tool: deploy
      args.environment: production
    action: require_approval
    approval: { timeout: 10m }
  - id: flag-writes
    when: { tool: "write_*" }
    action: warn
    mode: shadow
`;

const BROKEN_POLICY = `${POLICIES}  - id: large-refunds
    when:
      tool: "payments.*"
      args.amount: { gt: 50000 }
    action: explode
`;
const FIXED_POLICY = BROKEN_POLICY.replace("action: explode", "action: require_approval");

/** The browser globals the page functions below touch (this file is type-checked without the DOM library). */
interface InPage {
  location: { hash: string };
  document: { activeElement: { id: string; textContent: string | null; getAttribute(name: string): string | null } | null; documentElement: { scrollWidth: number } };
  innerWidth: number;
  marker?: number;
  getComputedStyle(element: unknown, pseudo?: string): { position: string; content: string };
}

let dir: string;
let server: WardenServer;
let url: string;
let keys: { admin: string; reviewer: string; agent: string };
let browser: Browser;
let context: BrowserContext;
let page: Page;
let warden: Warden;
const pageErrors: string[] = [];

async function until<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await fn();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${what}${lastError ? `: ${String(lastError)}` : ""}`);
}

const shot = (name: string, target: Page = page) => target.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });

async function api(method: string, path: string, options: { key?: string; body?: unknown; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...options.headers };
  if (options.key) headers.Authorization = `Bearer ${options.key}`;
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(`${url}${path}`, { method, headers, ...(options.body !== undefined && { body: JSON.stringify(options.body) }) });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? (JSON.parse(text) as any) : undefined };
}

/** Same-document navigation, as a click on an in-console link does. */
const setHash = (target: Page, hash: string) => target.evaluate((value) => ((globalThis as unknown as InPage).location.hash = value), hash);

async function goto(hash: string, ready: string) {
  await setHash(page, hash);
  await page.locator(ready).first().waitFor({ state: "attached" });
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium is not installed at ${CHROMIUM}: the console's end-to-end test needs a real browser (apt-get install chromium; .ci/run installs it).`);
  }
  mkdirSync(SHOTS, { recursive: true });
  dir = mkdtempSync(join(tmpdir(), "warden-console-"));
  server = createWardenServer({ db: join(dir, "warden.db"), heartbeatInterval: 500, onError: (error) => console.error(error) });
  keys = {
    admin: (await server.store.createKey({ org: ORG, role: "admin", name: "alice" })).key,
    reviewer: (await server.store.createKey({ org: ORG, role: "reviewer", name: "bob" })).key,
    agent: (await server.store.createKey({ org: ORG, role: "agent", name: "billing agents" })).key,
  };
  ({ url } = await server.listen(0));
  const put = await api("PUT", "/v1/policies", { key: keys.admin, body: { policies: POLICIES, comment: "initial set" } });
  expect(put.status).toBe(201);

  warden = new Warden({ agentId: "billing-agent", url, apiKey: keys.agent, store: ":memory:", remote: { cacheDir: join(dir, "agent-cache"), flushInterval: 50 } });
  expect(await warden.ready()).toBe(true);

  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"] });
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  context.setDefaultTimeout(10_000);
  page = await context.newPage();
  page.on("pageerror", (error) => pageErrors.push(error.message));
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await warden?.shutdown();
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("console sessions (HTTP)", () => {
  test("agent keys cannot sign in; reviewer keys get an HttpOnly, SameSite=Strict cookie that authenticates /v1", async () => {
    const refused = await api("POST", "/console/session", { body: { apiKey: keys.agent } });
    expect(refused.status).toBe(403);
    expect(refused.body.error.problems[0]).toMatchObject({ path: "apiKey" });
    expect(refused.headers.get("set-cookie")).toBeNull();

    const malformed = await api("POST", "/console/session", { body: { apiKey: "" } });
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.problems[0].path).toBe("apiKey");

    const signedIn = await api("POST", "/console/session", { body: { apiKey: keys.reviewer } });
    expect(signedIn.status).toBe(201);
    const setCookie = signedIn.headers.get("set-cookie")!;
    expect(setCookie).toMatch(/^warden_session=[A-Za-z0-9_-]{43};/);
    expect(setCookie).toContain("HttpOnly");
    expect(setCookie).toContain("SameSite=Strict");
    expect(signedIn.body).toMatchObject({ role: "reviewer", org: ORG, name: "bob" });
    const cookie = setCookie.split(";")[0]!;
    const csrf = signedIn.body.csrfToken as string;

    expect((await api("GET", "/v1/runs?limit=1", { headers: { Cookie: cookie } })).status).toBe(200);
    expect((await api("GET", "/console/session", { headers: { Cookie: cookie } })).body).toMatchObject({ signedIn: true, role: "reviewer" });
    // Writes on the cookie need the CSRF token, come from the same origin, and keep the role's limits.
    expect((await api("POST", "/v1/approvals/apr_missing/approve", { headers: { Cookie: cookie }, body: { reason: "ok" } })).status).toBe(403);
    expect((await api("POST", "/v1/approvals/apr_missing/approve", { headers: { Cookie: cookie, "X-Warden-CSRF": "wrong" }, body: { reason: "ok" } })).status).toBe(403);
    expect((await api("POST", "/v1/approvals/apr_missing/approve", { headers: { Cookie: cookie, "X-Warden-CSRF": csrf, Origin: "http://evil.example" }, body: { reason: "ok" } })).status).toBe(403);
    const noReason = await api("POST", "/v1/approvals/apr_missing/approve", { headers: { Cookie: cookie, "X-Warden-CSRF": csrf }, body: { reason: "  " } });
    expect(noReason.status).toBe(400);
    expect(noReason.body.error.problems).toEqual([expect.objectContaining({ path: "reason" })]);
    const asSomeoneElse = await api("POST", "/v1/approvals/apr_missing/approve", { headers: { Cookie: cookie, "X-Warden-CSRF": csrf }, body: { reason: "ok", reviewer: "mallory" } });
    expect(asSomeoneElse.status).toBe(400);
    expect((await api("POST", "/v1/approvals/apr_missing/approve", { headers: { Cookie: cookie, "X-Warden-CSRF": csrf }, body: { reason: "ok" } })).status).toBe(404);
    const reviewerHalt = await api("POST", "/v1/halts", { headers: { Cookie: cookie, "X-Warden-CSRF": csrf }, body: { reason: "stop" } });
    expect(reviewerHalt.status).toBe(403);
    expect(reviewerHalt.body.error.code).toBe("insufficient_scope");
    // An API key in the request takes precedence over the cookie, and the console's rules do not apply to it.
    expect((await api("GET", "/v1/me", { key: keys.admin, headers: { Cookie: cookie } })).body.role).toBe("admin");

    // Signing out ends the session at once.
    expect((await api("DELETE", "/console/session", { headers: { Cookie: cookie } })).status).toBe(403);
    expect((await api("DELETE", "/console/session", { headers: { Cookie: cookie, "X-Warden-CSRF": csrf } })).status).toBe(204);
    const after = await api("GET", "/v1/runs?limit=1", { headers: { Cookie: cookie } });
    expect(after.status).toBe(401);
    expect((await api("GET", "/console/session", { headers: { Cookie: cookie } })).body).toEqual({ signedIn: false });
  });

  test("a revoked key ends its sessions", async () => {
    const extra = await server.store.createKey({ org: ORG, role: "reviewer", name: "carol" });
    const signedIn = await api("POST", "/console/session", { body: { apiKey: extra.key } });
    const cookie = signedIn.headers.get("set-cookie")!.split(";")[0]!;
    expect((await api("GET", "/v1/halts", { headers: { Cookie: cookie } })).status).toBe(200);
    await server.store.revokeKey(ORG, extra.record.keyId);
    expect((await api("GET", "/v1/halts", { headers: { Cookie: cookie } })).status).toBe(401);
  });

  test("pages are served with a strict content security policy and no framing", async () => {
    const response = await fetch(`${url}/`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("text/html");
    expect(response.headers.get("content-security-policy")).toContain("script-src 'self'");
    expect(response.headers.get("x-frame-options")).toBe("DENY");
    const script = await fetch(`${url}/assets/app.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get("content-type")).toContain("javascript");
    expect((await fetch(`${url}/assets/../../package.json`)).status).toBe(404);
  });
});

describe("console in a browser", () => {
  test("sign in: an agent key is refused at the field, an admin key gets in", async () => {
    await page.goto(`${url}/`);
    const key = page.getByLabel("API key");
    await key.waitFor();
    await shot("login");
    await key.fill(keys.agent);
    await page.getByRole("button", { name: "Sign in" }).click();
    const error = page.locator("#api-key-error");
    await expect.poll(() => error.textContent()).toContain("agent key");
    expect(await key.getAttribute("aria-invalid")).toBe("true");

    await key.fill(keys.admin);
    await page.keyboard.press("Enter");
    await page.locator("#runs-table").waitFor();
    expect(await page.locator("#who").textContent()).toContain("admin");
    await expect.poll(() => page.locator("#halt-banner").textContent()).toContain("No halts in force");
    const cookies = await context.cookies();
    expect(cookies.find((c) => c.name === "warden_session")).toMatchObject({ httpOnly: true, sameSite: "Strict" });
  });

  test("a run appears live, with its status, and its page shows the tree and a delegated sub-agent run", async () => {
    await goto("#/runs", "#runs-table");
    await expect.poll(() => page.locator("#live-state").textContent()).toContain("Live");
    await page.evaluate(() => ((globalThis as unknown as InPage).marker = 42));

    let runId = "";
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const running = warden.run(
      { task: "refund order 1042" },
      async (run) => {
        runId = run.runId;
        await run.step("look up", () => run.tool("read_order", { id: 1042, password: "hunter2" }, () => ({ id: 1042, amount: 28_000 })));
        await run.tool("write_note", { text: "refund started" }, () => "ok");
        await warden.run({ task: "check fraud score" }, async (child) => child.tool("fraud_score", { order: 1042 }, () => 0.02), { agentId: "research-agent" });
        await gate;
      },
      { agentContext: { goal: "Refund order 1042", reasoning: "The customer returned the item." } },
    );
    const row = page.locator(`tr[data-run-id="${await until("the run to start", () => runId || undefined)}"]`);
    await row.waitFor({ timeout: 10_000 });
    expect(await row.getAttribute("data-status")).toBe("running");
    release();
    await running;
    await expect.poll(() => page.locator(`tr[data-run-id="${runId}"]`).getAttribute("data-status"), { timeout: 10_000 }).toBe("completed");
    expect(await page.locator(`tr[data-run-id="${runId}"] td`).first().textContent()).toContain("Completed");
    // No reload happened: the page's state survived.
    expect(await page.evaluate(() => (globalThis as unknown as InPage).marker)).toBe(42);
    await shot("runs");

    // Filter by agent: the sub-agent's run only.
    await page.getByLabel("Agent").fill("research-agent");
    await page.getByRole("button", { name: "Apply" }).click();
    await expect.poll(() => page.locator("#runs-body tr").count()).toBe(1);
    expect(await page.locator("#runs-body tr").first().textContent()).toContain("research-agent");

    await goto(`#/runs/${runId}`, "h1");
    await expect.poll(() => page.locator("h1").textContent()).toContain(runId);
    const read = page.locator("details[data-tool-call-id]", { hasText: "read_order" });
    await read.locator("summary").click();
    expect(await page.locator(".tree").first().textContent()).toContain("Step look up");
    // Input as recorded: redacted before it left the agent.
    const readBody = (await read.locator(".body").textContent()) ?? "";
    expect(readBody).toContain("1042");
    expect(readBody).not.toContain("hunter2");
    expect(readBody).toContain("Allow");
    expect(await page.locator("details[data-tool-call-id]", { hasText: "write_note" }).locator("summary").textContent()).toContain("1 shadow");
    const subrun = page.locator(".subrun");
    await expect.poll(() => subrun.count()).toBe(1);
    expect(await subrun.textContent()).toContain("research-agent");
    expect(await subrun.textContent()).toContain("fraud_score");
    expect(await page.locator(`#audit-${runId}`).textContent()).toContain("run.started");
    expect(await page.locator(".facts").first().textContent()).toContain("The customer returned the item.");
    await shot("run");
  });

  test("approve a pending request: the waiting agent finishes at once", async () => {
    await goto("#/approvals", "#approvals-list");
    let finishedAt = 0;
    const deploying = warden
      .run({ task: "ship release 7" }, (run) =>
        run.tool("deploy", { environment: "production", version: "7.0.0" }, () => "deployed", {
          agentContext: { goal: "Ship release 7 to production", reasoning: "All checks passed on staging." },
        }),
      )
      .then((result) => ((finishedAt = Date.now()), result));

    const card = page.locator("article.card", { hasText: "deploy" });
    await card.waitFor({ timeout: 10_000 });
    const text = (await card.textContent()) ?? "";
    expect(text).toContain("Ship release 7 to production");
    expect(text).toContain("All checks passed on staging.");
    expect(text).toContain("approve-prod-deploy");
    expect(text).toContain("7.0.0");
    await expect.poll(() => page.locator("#pending-count").textContent()).toBe("1");
    await shot("approvals");

    // A decision needs a reason, checked here and by the server.
    await card.getByRole("button", { name: "Approve" }).click();
    await expect.poll(() => card.locator(".field-error").textContent()).toContain("reason");
    expect(finishedAt).toBe(0);

    await card.getByLabel("Reason for your decision").fill("Release notes reviewed");
    await card.getByRole("button", { name: "Approve" }).click();
    expect(await deploying).toBe("deployed");
    const decided = page.locator("article.card", { hasText: "deploy" });
    await expect.poll(() => decided.getAttribute("data-status")).toBe("approved");
    expect(await decided.textContent()).toContain("Release notes reviewed");
    expect(await decided.textContent()).toContain("alice");
    // The approved card stays on screen, but it is no longer a pending request.
    await expect.poll(() => page.locator("#approvals-count").textContent()).toBe("0 pending requests");

    // The run page shows the approval with reviewer and reason.
    const approval = (await api("GET", "/v1/approvals?status=approved", { key: keys.admin })).body.items[0];
    await goto(`#/runs/${approval.runId}`, "details[data-tool-call-id]");
    const call = page.locator("details[data-tool-call-id]", { hasText: "deploy" });
    await call.locator("summary").click();
    const body = (await call.textContent()) ?? "";
    expect(body).toContain("Release notes reviewed");
    expect(body).toContain("alice");
    // The audit trail reads in the order things happened: the run started before its approval was asked for.
    const trail = await page.locator(`#audit-${approval.runId} code`).allTextContents();
    expect(trail.indexOf("run.started")).toBeGreaterThanOrEqual(0);
    expect(trail.indexOf("run.started")).toBeLessThan(trail.indexOf("approval.requested"));
    // A decided approval has no inbox link, and no stray "null" where it would have been.
    expect(body).not.toContain("Decide in the approvals inbox");
    expect(await call.locator(".body").evaluate((element) => [...(element as unknown as { childNodes: Array<{ nodeType: number; textContent: string }> }).childNodes].filter((node) => node.nodeType === 3).map((node) => node.textContent))).toEqual([]);
  });

  test("halt an agent with a confirmation and a reason: its next tool call is refused; resume", async () => {
    await goto("#/halts", "#halt-form");
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let outcome: unknown;
    const working = warden
      .run({ task: "long job" }, async (run) => {
        await run.tool("read_order", { id: 1 }, () => 1);
        await gate;
        return run.tool("read_order", { id: 2 }, () => 2);
      })
      .then((value) => (outcome = value), (error: unknown) => (outcome = error));

    await page.getByLabel("One agent").check();
    await page.locator("#halt-agent").fill("billing-agent");
    await page.getByRole("button", { name: "Halt…" }).click();
    // The reason is required: shown at the field, and nothing is halted.
    await expect.poll(() => page.locator("#halt-reason-error").textContent()).toContain("reason");
    expect(await page.locator("dialog[open]").count()).toBe(0);

    await page.locator("#halt-reason").fill("Suspicious refunds");
    await page.getByRole("button", { name: "Halt…" }).click();
    const dialog = page.locator("dialog[open]");
    await dialog.waitFor();
    expect(await dialog.textContent()).toContain("Halt agent billing-agent?");
    await shot("halt-confirm");
    await dialog.getByRole("button", { name: "Halt agent billing-agent" }).click();

    await expect.poll(() => page.locator("#halt-banner").textContent()).toContain("HALTED");
    expect(await page.locator("#halt-banner").textContent()).toContain("Suspicious refunds");
    // The form keeps the scope and target chosen: a second halt does not silently widen to the organization.
    expect(await page.getByLabel("One agent").isChecked()).toBe(true);
    expect(await page.getByLabel("Whole organization").isChecked()).toBe(false);
    expect(await page.locator("#halt-agent").inputValue()).toBe("billing-agent");
    expect(await page.locator("#halt-agent").isVisible()).toBe(true);
    expect(await page.locator("#halt-reason").inputValue()).toBe("");
    await until("the halt to reach the agent", () => warden.activeHalts.some((h) => h.scope === "agent" && h.target === "billing-agent"));
    release();
    await working;
    expect(outcome).toBeInstanceOf(HaltedError);
    await expect(warden.run({ task: "after halt" }, (run) => run.tool("read_order", { id: 3 }, () => 3))).rejects.toBeInstanceOf(HaltedError);
    await expect.poll(() => page.locator("#halt-state li").count()).toBe(1);
    await shot("halts");

    await page.getByRole("button", { name: /Resume agent billing-agent/ }).click();
    const resumeDialog = page.locator("dialog[open]");
    await resumeDialog.getByLabel("Reason (optional)").fill("False alarm");
    await resumeDialog.getByRole("button", { name: "Resume", exact: true }).click();
    await expect.poll(() => page.locator("#halt-banner").textContent()).toContain("No halts in force");
    await until("the resume to reach the agent", () => warden.activeHalts.length === 0);
    expect(await warden.run({ task: "after resume" }, (run) => run.tool("read_order", { id: 4 }, () => 4))).toBe(4);
  });

  test("edit a policy: an error is shown at the field, then a correct version is saved and reaches the agent; roll back", async () => {
    await goto("#/policies", "#policy-source");
    expect(await page.locator("#policy-version").textContent()).toContain("Version 1");
    const editor = page.locator("#policy-source");
    expect(await editor.inputValue()).toBe(POLICIES);
    await shot("policies");

    await editor.fill(BROKEN_POLICY);
    await page.getByRole("button", { name: "Validate" }).click();
    const problem = page.locator("#policy-problems li").first();
    await problem.waitFor();
    expect(await problem.getAttribute("data-policy-id")).toBe("large-refunds");
    expect(await problem.getAttribute("data-field")).toBe("action");
    expect(await problem.getAttribute("data-line")).toBe(String(BROKEN_POLICY.split("\n").findIndex((line) => line.includes("explode")) + 1));
    expect(await problem.textContent()).toContain("Invalid option");
    expect(await editor.getAttribute("aria-invalid")).toBe("true");
    expect(await page.locator(".gutter .bad").count()).toBe(1);
    // The server refuses to save it too.
    await page.getByRole("button", { name: "Save as new version" }).click();
    await expect.poll(() => page.locator("#policy-problems li").count()).toBe(1);
    expect((await api("GET", "/v1/policies/current", { key: keys.admin })).body.version).toBe(1);
    await problem.getByRole("button", { name: /Line/ }).click();
    expect(await page.evaluate(() => (globalThis as unknown as InPage).document.activeElement?.id)).toBe("policy-source");
    await shot("policies-error");

    await editor.fill(FIXED_POLICY);
    await page.getByLabel("Comment (optional)").fill("large refunds need a human");
    await page.getByRole("button", { name: "Save as new version" }).click();
    await expect.poll(() => page.locator("#policy-version").textContent()).toContain("Version 2");
    expect(await page.locator("#policy-problems li").count()).toBe(0);
    expect(await editor.getAttribute("aria-invalid")).toBeNull();
    await until("the new policies to reach the agent", () => warden.policies.policies.some((p) => p.id === "large-refunds"));
    expect(warden.check({ tool: "payments.refund", args: { amount: 60_000 } }).action).toBe("require_approval");
    expect(await page.locator("#policy-shadow").textContent()).toContain("flag-writes");

    await page.getByRole("button", { name: "Roll back to v1…" }).click();
    await page.locator("dialog[open]").getByRole("button", { name: "Roll back to v1" }).click();
    await expect.poll(() => page.locator("#policy-version").textContent()).toContain("Version 3");
    expect(await page.locator("#policy-version").textContent()).toContain("restores version 1");
    await until("the rollback to reach the agent", () => !warden.policies.policies.some((p) => p.id === "large-refunds"));
  });

  test("ledger: integrity verified up to the head entry", async () => {
    await goto("#/ledger", "#ledger-status");
    const report = (await api("GET", "/v1/ledger/verify", { key: keys.admin })).body;
    expect(report.ok).toBe(true);
    expect(await page.locator("#ledger-status").textContent()).toContain(`Verified up to entry ${report.head.seq}`);
    await shot("ledger");
  });

  test("keyboard: the skip link, the navigation and a run are reachable without a mouse", async () => {
    await page.goto(`${url}/#/runs`);
    await page.reload();
    await page.locator("#runs-table").waitFor();
    await page.keyboard.press("Tab");
    expect(await page.evaluate(() => (globalThis as unknown as InPage).document.activeElement?.textContent)).toBe("Skip to content");
    let reached = "";
    for (let i = 0; i < 40 && !reached.startsWith("#/runs/"); i++) {
      await page.keyboard.press("Tab");
      reached = await page.evaluate(() => (globalThis as unknown as InPage).document.activeElement?.getAttribute("href") ?? "");
    }
    expect(reached).toMatch(/^#\/runs\/run_/);
    await page.keyboard.press("Enter");
    await expect.poll(() => page.evaluate(() => (globalThis as unknown as InPage).location.hash)).toBe(reached);
    await page.locator(".tree").first().waitFor();
  });

  test("reviewers see everything but cannot halt or edit policies", async () => {
    const reviewerContext = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const reviewerPage = await reviewerContext.newPage();
    await reviewerPage.goto(`${url}/`);
    await reviewerPage.getByLabel("API key").fill(keys.reviewer);
    await reviewerPage.getByRole("button", { name: "Sign in" }).click();
    await reviewerPage.locator("#runs-table").waitFor();
    await setHash(reviewerPage, "#/halts");
    await expect.poll(() => reviewerPage.locator("main").textContent()).toContain("Halting needs an admin key");
    expect(await reviewerPage.locator("#halt-form").count()).toBe(0);
    await setHash(reviewerPage, "#/policies");
    await reviewerPage.locator("#policy-source").waitFor();
    expect(await reviewerPage.locator("#policy-source").getAttribute("readonly")).not.toBeNull();
    expect(await reviewerPage.getByRole("button", { name: "Save as new version" }).count()).toBe(0);
    await reviewerContext.close();
  });

  test("narrow screen: no horizontal scrolling, tables become cards", async () => {
    const narrow = await browser.newPage({ viewport: { width: 390, height: 844 }, storageState: await context.storageState() });
    narrow.setDefaultTimeout(10_000);
    for (const [hash, ready, name] of [
      ["#/runs", "#runs-table", "runs-narrow"],
      ["#/approvals?status=approved", "#approvals-list", "approvals-narrow"],
      ["#/policies", "#policy-source", "policies-narrow"],
    ] as const) {
      await narrow.goto(`${url}/${hash}`);
      await narrow.locator(ready).waitFor({ state: "attached" });
      await narrow.waitForTimeout(300);
      expect(await narrow.evaluate(() => (globalThis as unknown as InPage).document.documentElement.scrollWidth - (globalThis as unknown as InPage).innerWidth)).toBeLessThanOrEqual(0);
      await shot(name, narrow);
    }
    await narrow.goto(`${url}/#/runs`);
    await narrow.locator("#runs-table").waitFor();
    // The header row is hidden visually; each cell carries its label instead.
    expect(await narrow.locator("#runs-table thead").evaluate((element) => (globalThis as unknown as InPage).getComputedStyle(element).position)).toBe("absolute");
    expect(await narrow.locator("#runs-table td").first().evaluate((element) => (globalThis as unknown as InPage).getComputedStyle(element, "::before").content)).toBe('"Status"');
    await narrow.close();
  });

  test("10,000 runs: the list pages fast", async () => {
    const principal = (await server.store.authenticate(keys.agent))!;
    const start = Date.now() - 10_000 * 10;
    for (let batch = 0; batch < 10; batch++) {
      const events = Array.from({ length: 1000 }, (_, i) => {
        const n = batch * 1000 + i;
        return { id: `evt_bulk_${n}`, type: "run.started", ts: start + n * 10, org: ORG, agentId: `bulk-agent-${n % 20}`, runId: `run_bulk_${n}`, stepId: null, toolCallId: null, actor: null, data: { traceId: `trace_bulk_${n % 100}` } };
      });
      await server.store.ingest(principal, events as never);
    }
    await goto("#/runs?offset=0", "#runs-table");
    await setHash(page, "#/runs?status=running");
    await expect.poll(() => page.locator("#runs-summary").textContent()).toMatch(/of 10,0\d\d/);
    await page.getByRole("link", { name: "Older →" }).first().click();
    await expect.poll(() => page.locator("#runs-summary").textContent()).toMatch(/^Runs 51–100 of 10,0\d\d/);
    await setHash(page, "#/runs?agent=bulk-agent-3&trace=trace_bulk_3");
    await expect.poll(() => page.locator("#runs-summary").textContent()).toBe("Runs 1–50 of 100");
  }, 60_000);

  test("ledger: a changed entry is named as the first bad one", async () => {
    const db = new DatabaseSync(join(dir, "warden.db"));
    const target = db.prepare("SELECT seq FROM org_ledger WHERE org = ? ORDER BY seq LIMIT 1 OFFSET 5").get(ORG) as { seq: number };
    db.prepare("UPDATE org_ledger SET data = ? WHERE org = ? AND seq = ?").run('{"tampered":true}', ORG, target.seq);
    db.close();
    await goto("#/ledger", "#ledger-status");
    await expect.poll(() => page.locator("#ledger-status").getAttribute("data-ok")).toBe("false");
    expect(await page.locator("#ledger-status").textContent()).toContain(`first bad entry is ${target.seq}`);
    await shot("ledger-tampered");
    expect(pageErrors).toEqual([]);
  });
});
