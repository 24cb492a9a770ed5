// The console's Verify page in real Chromium: an evidence bundle chosen in the file picker, then one
// dropped on the page, verified in the browser by agent-warden/verify (served as a console asset), with
// no request to the API; a tampered bundle shows its failures by code.
import { createPublicKey } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { openLedger, Warden, type EvidenceBundle } from "agent-warden";
import { createWardenServer, type WardenServer } from "agent-warden/server";
import { tempDir } from "./fixtures/proc.js";

const CHROMIUM = "/usr/bin/chromium";
const SHOTS = fileURLToPath(new URL("../test-results/console/", import.meta.url));
const temp = tempDir("warden-console-verify-");

let server: WardenServer;
let url: string;
let browser: Browser;
let page: Page;
let bundle: EvidenceBundle;
let pem: string;
let toolCallId: string;
const apiRequests: string[] = [];
const pageErrors: string[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium is not installed at ${CHROMIUM}: the console's end-to-end tests need a real browser (apt-get install chromium).`);
  mkdirSync(SHOTS, { recursive: true });
  // A bundle from an embedded ledger: an approved refund under a policy.
  const file = join(temp.dir, "agent.db");
  const warden = new Warden({
    agentId: "billing-agent",
    store: file,
    ledger: { checkpointEvery: 5 },
    policies: { version: 1, default: "allow", policies: [{ id: "large-refunds", when: { tool: "payments.*" }, action: "require_approval" }] },
    onApprovalRequest: (_request, decide) => decide.approve({ reviewer: "alice", reason: "customer verified" }),
  });
  await warden.run({ task: "refund order 1042" }, (run) => run.tool("payments.refund", { amount: 28000 }, () => "refunded"));
  warden.close();
  pem = createPublicKey(readFileSync(join(temp.dir, "keys", "ledger.pem"), "utf8")).export({ type: "spki", format: "pem" }).toString();
  const { ledger, close } = openLedger(file, { publicKey: pem, checkpointEvery: 5 });
  try {
    toolCallId = ledger.entries().find((e) => e.type === "approval.approved")!.toolCallId!;
    bundle = JSON.parse(JSON.stringify(ledger.evidence(toolCallId))) as EvidenceBundle;
  } finally {
    close();
  }

  server = createWardenServer({ db: join(temp.dir, "warden.db"), onError: (error) => console.error(error) });
  const reviewer = (await server.store.createKey({ org: "acme", role: "reviewer", name: "bob" })).key;
  ({ url } = await server.listen(0));
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"] });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  context.setDefaultTimeout(15_000);
  page = await context.newPage();
  page.on("pageerror", (error) => pageErrors.push(error.message));
  page.on("console", (message) => message.type() === "error" && pageErrors.push(message.text()));
  await page.goto(`${url}/`);
  await page.getByLabel("API key").fill(reviewer);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("#runs-table").waitFor();
  page.on("request", (request) => {
    if (new URL(request.url()).pathname.startsWith("/v1/") && !request.url().includes("/v1/events") && !request.url().includes("/v1/halts") && !request.url().includes("/v1/approvals")) apiRequests.push(request.url());
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  temp.cleanup();
});

const status = () => page.locator("#verify-status");

describe("the Verify page", () => {
  test("a bundle chosen in the file picker is verified in the browser: the proven sentence, against the bundle's key, then the pasted key", async () => {
    await page.getByRole("link", { name: "Verify" }).click();
    await page.getByRole("heading", { name: "Verify evidence" }).waitFor();
    const file = join(temp.dir, "refund-1042.json");
    writeFileSync(file, `${JSON.stringify(bundle, null, 2)}\n`);
    await page.locator("#bundle-file").setInputFiles(file);
    await expect.poll(() => status().getAttribute("data-ok"), { timeout: 15_000 }).toBe("true");
    const statement = await page.locator("#verify-statement").textContent();
    expect(statement).toMatch(new RegExp(`^tool call ${toolCallId} by agent billing-agent approved by alice at \\S+ \\("customer verified"\\) under policy set [0-9a-f]{16}… ?; entries \\d+\\.\\.\\d+ \\(\\d+\\) included in the checkpoint of size \\d+ signed by agent-warden\\.dev/ledger/[0-9a-f]{16}\\+[0-9a-f]{8} \\(the bundle's own key`));
    expect(await page.locator("#verify-result").textContent()).toContain("customer verified” (asked by policy large-refunds)");
    // The key obtained out of band, pasted: the same bundle now verifies against it.
    await page.locator("#public-key").fill(pem);
    await page.locator("#public-key").dispatchEvent("change");
    await expect.poll(() => page.locator("#verify-statement").textContent(), { timeout: 15_000 }).not.toContain("the bundle's own key");
    expect(await page.locator("#verify-result").textContent()).toContain("the public key given above");
    await page.screenshot({ path: join(SHOTS, "verify-ok.png"), fullPage: true });
    // Checked client-side: the bundle went to no API route, and the verifier is the console's own asset.
    expect(apiRequests).toEqual([]);
    expect(await page.evaluate(() => (globalThis as unknown as { performance: { getEntriesByType(t: string): Array<{ name: string }> } }).performance.getEntriesByType("resource").map((r) => new URL(r.name).pathname).filter((p) => p.endsWith("/verifier.js")))).toEqual(["/assets/verifier.js"]);
  });

  test("a tampered bundle dropped on the page lists each failure by code; a wrong pasted key is named", async () => {
    const tampered = JSON.parse(JSON.stringify(bundle)) as EvidenceBundle;
    const approval = tampered.entries.find((e) => e.type === "approval.approved")!;
    approval.dataJson = approval.dataJson.replace("alice", "mallory");
    const proof = Buffer.from(tampered.entries[0]!.inclusionProof[0]!, "base64");
    proof[0] = proof[0]! ^ 1;
    tampered.entries[0]!.inclusionProof[0] = proof.toString("base64");
    await page.locator("#public-key").fill("");
    const drop = async (text: string, name: string) => {
      const dataTransfer = await page.evaluateHandle(
        ([content, fileName]) => {
          const g = globalThis as unknown as { DataTransfer: new () => { items: { add(file: unknown): void } }; File: new (parts: string[], name: string, options: { type: string }) => unknown };
          const transfer = new g.DataTransfer();
          transfer.items.add(new g.File([content!], fileName!, { type: "application/json" }));
          return transfer;
        },
        [text, name],
      );
      await page.dispatchEvent("#drop-zone", "dragover", { dataTransfer });
      await page.dispatchEvent("#drop-zone", "drop", { dataTransfer });
    };
    await drop(JSON.stringify(tampered), "tampered.json");
    await expect.poll(() => status().getAttribute("data-ok"), { timeout: 15_000 }).toBe("false");
    expect(await status().textContent()).toContain("tampered.json");
    const failures = await page.locator("#verify-failures li").evaluateAll((items) => items.map((li) => [(li as unknown as { dataset: { code: string } }).dataset.code, li.textContent]));
    expect(failures).toEqual([
      ["inclusion_failed", expect.stringContaining(`entry ${tampered.entries[0]!.seq} is not included in the signed checkpoint`)],
      ["entry_hash", expect.stringContaining(`entry ${approval.seq} content does not match its hash (modified)`)],
    ]);
    await page.screenshot({ path: join(SHOTS, "verify-tampered.png"), fullPage: true });

    // The honest bundle dropped, with another log's key pasted: refused for the key, not for its content.
    await page.locator("#public-key").fill(`-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA${"A".repeat(43)}=\n-----END PUBLIC KEY-----`);
    await drop(JSON.stringify(bundle), "refund-1042.json");
    await expect.poll(() => status().getAttribute("data-code"), { timeout: 15_000 }).toBe("key_mismatch");
    // Not JSON at all.
    await drop("{ not json", "broken.json");
    await expect.poll(() => status().getAttribute("data-code"), { timeout: 15_000 }).toBe("bundle_malformed");
    expect(pageErrors).toEqual([]);
    expect(apiRequests).toEqual([]);
  });
});
