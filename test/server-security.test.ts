// Tenant isolation (keys of two organizations, every endpoint tried across them) and hostile input
// on every endpoint (always 4xx, never a crash, never a partial write).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createWardenServer, type WardenServer } from "agent-warden/server";
import type { SqliteControlPlaneStore } from "../src/server/sqlite-store.js";
import { EVENTS, POLICIES } from "./fixtures/make-wire-contract.js";

type Keys = { admin: string; reviewer: string; agent: string };
const FAR = 4_102_444_800_000;

async function call(url: string, key: string | undefined, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any; text: string }> {
  const response = await fetch(url + path, {
    method,
    headers: { ...(key && { authorization: `Bearer ${key}` }), ...(body !== undefined && typeof body !== "string" && { "content-type": "application/json" }), ...headers },
    ...(body !== undefined && { body: typeof body === "string" ? body : JSON.stringify(body) }),
  });
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = text;
  }
  return { status: response.status, body: parsed, text };
}

/** Row counts of every table: what a rejected request must leave as it was. */
function tableCounts(server: WardenServer): Record<string, number> {
  const db = (server.store as SqliteControlPlaneStore).store;
  db.flush();
  const out: Record<string, number> = {};
  for (const table of ["runs", "steps", "tool_calls", "approvals", "halts", "revoked_tokens", "org_ledger", "agents", "api_keys", "policy_versions", "stream_events", "ingested_events"]) {
    out[table] = (db.db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
  }
  return out;
}

describe("tenant isolation: keys of one organization never reach another's data", () => {
  let server: WardenServer;
  let url: string;
  const acme = {} as Keys;
  const globex = {} as Keys;
  const seeded: Record<string, string> = {};

  beforeAll(async () => {
    server = createWardenServer({ db: ":memory:", console: false, onError: () => {} });
    for (const [org, keys] of [["acme", acme], ["globex", globex]] as const) {
      for (const role of ["admin", "reviewer", "agent"] as const) keys[role] = (await server.store.createKey({ org, role, name: `${org}-${role}` })).key;
    }
    url = (await server.listen(0)).url;
    // acme's world: policies, runs, tool calls, approvals, a halt, a token, keys.
    expect((await call(url, acme.admin, "PUT", "/v1/policies", { policies: POLICIES })).status).toBe(201);
    expect((await call(url, acme.agent, "PUT", "/v1/agents/agent-1", { group: "billing" })).status).toBe(200);
    expect((await call(url, acme.agent, "POST", "/v1/events", { events: EVENTS })).status).toBe(200);
    expect((await call(url, acme.agent, "POST", "/v1/approvals", { approvalId: "apr_acme00000001", toolCallId: "tc_contract5", runId: "run_contract1", agentId: "agent-1", toolName: "refund", expiresAt: FAR })).status).toBe(201);
    expect((await call(url, acme.admin, "POST", "/v1/halts", { agentId: "agent-1", reason: "acme halt", haltId: "halt_acme00000001" })).status).toBe(201);
    const minted = await call(url, acme.admin, "POST", "/v1/tokens", { agentId: "agent-1", scopes: ["refunds:*"], ttl: "1h" });
    seeded.token = minted.body.token;
    seeded.tokenId = minted.body.tokenId;
    seeded.keyId = (await call(url, acme.admin, "POST", "/v1/keys", { role: "agent", name: "acme extra" })).body.keyId;
  });

  afterAll(async () => {
    await server.close();
  });

  it("reads: every list is empty of acme's rows, every acme id is 404", async () => {
    const g = globex;
    expect((await call(url, g.reviewer, "GET", "/v1/runs")).body.items).toEqual([]);
    expect((await call(url, g.reviewer, "GET", "/v1/runs?traceId=trace_contract1")).body.total).toBe(0);
    expect((await call(url, g.reviewer, "GET", "/v1/runs/run_contract1")).status).toBe(404);
    expect((await call(url, g.reviewer, "GET", "/v1/tool-calls")).body.items).toEqual([]);
    expect((await call(url, g.reviewer, "GET", "/v1/tool-calls/tc_contract2")).status).toBe(404);
    expect((await call(url, g.reviewer, "GET", "/v1/approvals")).body.items).toEqual([]);
    expect((await call(url, g.agent, "GET", "/v1/approvals/apr_acme00000001")).status).toBe(404);
    expect((await call(url, g.reviewer, "GET", "/v1/agents")).body.agents).toEqual([]);
    expect((await call(url, g.agent, "GET", "/v1/halts?include=all")).body.halts).toEqual([]);
    const policy = await call(url, g.agent, "GET", "/v1/policies/current");
    expect(policy.body.version).toBe(0);
    expect((await call(url, g.reviewer, "GET", "/v1/policies/versions")).body.items).toEqual([]);
    expect((await call(url, g.reviewer, "GET", "/v1/policies/versions/1")).status).toBe(404);
    const keys = (await call(url, g.admin, "GET", "/v1/keys")).body.keys as Array<{ org: string }>;
    expect(keys.length).toBe(3);
    expect(keys.every((k) => k.org === "globex")).toBe(true);
    const ledger = await call(url, g.reviewer, "GET", "/v1/ledger/export");
    const entries = ledger.text.split("\n").filter(Boolean).map((line) => JSON.parse(line) as { org: string; runId: string | null });
    expect(entries.every((e) => e.org === "globex")).toBe(true);
    const verified = (await call(url, g.reviewer, "GET", "/v1/ledger/verify")).body;
    expect(verified.entries).toBe(entries.length);
    expect((await call(url, g.agent, "GET", "/v1/me")).body.org).toBe("globex");
    // The check uses globex's (empty) policies and halts, not acme's.
    expect((await call(url, g.agent, "POST", "/v1/check", { tool: "wipe_disk", agentId: "agent-1" })).body.action).toBe("allow");
  });

  it("writes aimed at acme's ids change nothing of acme's", async () => {
    const g = globex;
    const before = {
      run: (await call(url, acme.reviewer, "GET", "/v1/runs/run_contract1")).text,
      approval: (await call(url, acme.reviewer, "GET", "/v1/approvals/apr_acme00000001")).text,
      halts: (await call(url, acme.reviewer, "GET", "/v1/halts?include=all")).text,
      policy: (await call(url, acme.agent, "GET", "/v1/policies/current")).text,
    };
    expect((await call(url, g.reviewer, "POST", "/v1/approvals/apr_acme00000001/approve", {})).status).toBe(404);
    expect((await call(url, g.reviewer, "POST", "/v1/approvals/apr_acme00000001/reject", {})).status).toBe(404);
    // Approval ids are per organization: acme's id is answered as any unknown one (no existence oracle), and acme's request is untouched.
    const reused = await call(url, g.agent, "POST", "/v1/approvals", { approvalId: "apr_acme00000001", toolCallId: "tc_contract5", runId: "run_contract1", agentId: "agent-1", toolName: "refund" });
    const unknown = await call(url, g.agent, "POST", "/v1/approvals", { approvalId: "apr_never0000001", toolCallId: "tc_contract5", runId: "run_contract1", agentId: "agent-1", toolName: "refund" });
    expect([reused.status, Object.keys(reused.body).sort()]).toEqual([unknown.status, Object.keys(unknown.body).sort()]);
    expect(reused.status).toBe(201);
    expect((await call(url, g.admin, "POST", "/v1/halts", { reason: "x", haltId: "halt_acme00000001" })).status).toBe(409);
    expect((await call(url, g.admin, "POST", "/v1/halts/resume", { agentId: "agent-1" })).body.lifted).toEqual([]);
    expect((await call(url, g.admin, "POST", "/v1/policies/rollback", { version: 1 })).status).toBe(404);
    expect((await call(url, g.admin, "DELETE", `/v1/keys/${seeded.keyId}`)).status).toBe(404);
    // The same event ids, and events naming acme's runs, tool calls, steps and approvals.
    const hostile: Array<Record<string, unknown>> = EVENTS.map((e) => ({ ...e, data: { ...e.data, status: "failed", output: "pwned" } }));
    hostile.push({ ...EVENTS[7]!, id: "evt_x1", type: "approval.approved", data: { approvalId: "apr_acme00000001", status: "approved", reviewer: "mallory" } });
    hostile.push({ ...EVENTS[1]!, id: "evt_x2", stepId: "step_contract1", data: { name: "hijacked" } });
    hostile.push({ ...EVENTS[0]!, id: "evt_x3", type: "run.completed", data: {} });
    const ingested = await call(url, g.agent, "POST", "/v1/events", { events: hostile });
    expect(ingested.status).toBe(200);
    expect(ingested.body.duplicates).toBe(0);
    expect((await call(url, g.agent, "PUT", "/v1/agents/agent-1", { group: "mallory" })).status).toBe(200);
    expect((await call(url, g.admin, "PUT", "/v1/policies", { policies: { default: "block" } })).status).toBe(201);
    expect((await call(url, acme.reviewer, "GET", "/v1/runs/run_contract1")).text).toBe(before.run);
    expect((await call(url, acme.reviewer, "GET", "/v1/approvals/apr_acme00000001")).text).toBe(before.approval);
    expect((await call(url, acme.reviewer, "GET", "/v1/halts?include=all")).text).toBe(before.halts);
    expect((await call(url, acme.agent, "GET", "/v1/policies/current")).text).toBe(before.policy);
    expect((await call(url, acme.reviewer, "GET", "/v1/agents")).body.agents.find((a: { agentId: string }) => a.agentId === "agent-1").group).toBe("billing");
    expect((await call(url, acme.agent, "POST", "/v1/check", { tool: "read_order", agentId: "agent-1" })).body.halted).toBe(true);
  });

  it("tokens: each organization has its own key; one cannot revoke or verify the other's tokens", async () => {
    const acmeJwks = (await call(url, acme.agent, "GET", "/v1/tokens/jwks")).body.keys[0];
    const globexJwks = (await call(url, globex.agent, "GET", "/.well-known/jwks.json")).body.keys[0];
    expect(globexJwks.kid).not.toBe(acmeJwks.kid);
    expect((await call(url, globex.agent, "POST", "/v1/tokens/verify", { token: seeded.token })).body).toMatchObject({ valid: false, reason: "wrong_root_key" });
    expect((await call(url, globex.admin, "POST", "/v1/tokens/revoke", { tokenId: seeded.tokenId })).status).toBe(200);
    expect((await call(url, acme.agent, "POST", "/v1/tokens/verify", { token: seeded.token })).body.valid).toBe(true);
  });

  it("the stream carries only the subscriber's organization", async () => {
    const controller = new AbortController();
    const response = await fetch(`${url}/v1/stream`, { headers: { authorization: `Bearer ${globex.reviewer}`, "last-event-id": "0" }, signal: controller.signal });
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    const collect = (async () => {
      for (;;) {
        const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
        if (done) return;
        text += value;
      }
    })();
    await call(url, acme.admin, "POST", "/v1/halts", { reason: "acme only" });
    await call(url, acme.admin, "PUT", "/v1/policies", { policies: POLICIES, comment: "acme again" });
    await call(url, acme.agent, "POST", "/v1/events", { events: [{ ...EVENTS[0]!, id: "evt_acme_new", runId: "run_acme_new" }] });
    await new Promise((resolve) => setTimeout(resolve, 200));
    controller.abort();
    await collect;
    // globex reused acme's approval id for a request of its own (ids are per organization); nothing else of acme's shows.
    expect(text.replaceAll("apr_acme00000001", "")).not.toMatch(/acme/);
    expect(text).not.toMatch(/run_acme_new/);
  });

  it("a key bound to one agent cannot speak for another", async () => {
    const bound = (await server.store.createKey({ org: "acme", role: "agent", agentId: "agent-1" })).key;
    expect((await call(url, bound, "POST", "/v1/events", { events: [{ ...EVENTS[0]!, id: "evt_bound1" }] })).status).toBe(200);
    const other = await call(url, bound, "POST", "/v1/events", { events: [{ ...EVENTS[0]!, id: "evt_bound2", agentId: "agent-2", runId: "run_bound2" }] });
    expect(other.body).toEqual({ accepted: 0, duplicates: 0, rejected: [{ index: 0, id: "evt_bound2", code: "insufficient_scope", reason: expect.stringContaining("agent-1") }] });
    expect((await call(url, acme.reviewer, "GET", "/v1/runs/run_bound2")).status).toBe(404);
    expect((await call(url, bound, "POST", "/v1/approvals", { toolCallId: "tc_b", runId: "run_b", agentId: "agent-2", toolName: "refund" })).status).toBe(403);
  });

  it("a revoked key stops working at once", async () => {
    const { key, record } = await server.store.createKey({ org: "acme", role: "reviewer" });
    expect((await call(url, key, "GET", "/v1/runs")).status).toBe(200);
    expect((await call(url, acme.admin, "DELETE", `/v1/keys/${record.keyId}`)).status).toBe(200);
    expect((await call(url, key, "GET", "/v1/runs")).status).toBe(401);
  });
});

describe("hostile input: always 4xx, never a crash, never a partial write", () => {
  let server: WardenServer;
  let url: string;
  let admin: string;
  let agent: string;

  beforeAll(async () => {
    server = createWardenServer({ db: ":memory:", console: false, bodyLimit: "64kb", ingestBodyLimit: "256kb", onError: (error) => console.error("unexpected", error) });
    admin = (await server.store.createKey({ org: "acme", role: "admin" })).key;
    agent = (await server.store.createKey({ org: "acme", role: "agent" })).key;
    url = (await server.listen(0)).url;
    await call(url, admin, "PUT", "/v1/policies", { policies: POLICIES });
    await call(url, agent, "POST", "/v1/events", { events: EVENTS });
    await call(url, agent, "POST", "/v1/approvals", { approvalId: "apr_hostile00001", toolCallId: "tc_contract5", runId: "run_contract1", agentId: "agent-1", toolName: "refund", expiresAt: FAR });
  });

  afterAll(async () => {
    await server.close();
  });

  const deep = (depth: number): unknown => {
    let value: unknown = 1;
    for (let i = 0; i < depth; i++) value = { a: value };
    return value;
  };
  const deepText = (depth: number) => `${"[".repeat(depth)}${"]".repeat(depth)}`;

  /** Bodies no endpoint accepts. */
  const BODIES: unknown[] = [
    "{",
    "[1,2",
    '{"a":1}garbage',
    "null",
    "[]",
    "42",
    '"text"',
    "{}",
    JSON.stringify({ __proto__: { admin: true }, constructor: { prototype: { admin: true } } }).replace("{", '{"__proto__":{"role":"admin"},'),
    { unknownField: 1 },
    { events: "not an array", policies: 7, role: "root", reason: 12, token: 5, version: "one", tool: ["x"] },
    { events: [], policies: null, reason: "", tool: "" },
    { reason: "x".repeat(5000), tool: "t".repeat(300), agentId: "a".repeat(300), role: "admin", scopes: [], ttl: -1 },
    { events: [{ id: "x" }], version: 1e309, approvalId: "../../etc/passwd", haltId: "halt_../../x" },
    deep(40),
    deepText(50_000),
    "\u0000\u0001\u0002",
  ];

  const ENDPOINTS: Array<[string, string, "agent" | "admin"]> = [
    ["POST", "/v1/events", "agent"],
    ["PUT", "/v1/agents/agent-1", "agent"],
    ["POST", "/v1/check", "agent"],
    ["PUT", "/v1/policies", "admin"],
    ["POST", "/v1/policies/validate", "admin"],
    ["POST", "/v1/policies/rollback", "admin"],
    ["POST", "/v1/approvals", "agent"],
    ["POST", "/v1/approvals/apr_hostile00001/approve", "admin"],
    ["POST", "/v1/approvals/apr_hostile00001/reject", "admin"],
    ["POST", "/v1/halts", "admin"],
    ["POST", "/v1/halts/resume", "admin"],
    ["POST", "/v1/tokens", "admin"],
    ["POST", "/v1/tokens/revoke", "admin"],
    ["POST", "/v1/tokens/verify", "agent"],
    ["POST", "/v1/keys", "admin"],
  ];

  const GETS: string[] = [
    "/v1/runs",
    "/v1/runs/run_contract1",
    "/v1/tool-calls",
    "/v1/tool-calls/tc_contract1",
    "/v1/approvals",
    "/v1/approvals/apr_hostile00001",
    "/v1/policies/current",
    "/v1/policies/versions",
    "/v1/policies/versions/1",
    "/v1/halts",
    "/v1/agents",
    "/v1/keys",
    "/v1/me",
    "/v1/ledger/verify",
    "/v1/ledger/export",
    "/v1/tokens/jwks",
  ];

  const QUERIES = ["?limit=0", "?limit=-1", "?limit=1e9", "?limit=abc", "?limit=1&limit=2", "?offset=-5", "?status=exploded", "?unknown=1", "?depth=999", "?include=everything", "?afterSeq=x", "?agentId=" + "a".repeat(400), "?%ZZ=1"];

  it("every endpoint refuses every malformed body with a 4xx, and nothing is written", async () => {
    const before = tableCounts(server);
    const failures: string[] = [];
    for (const [method, path, role] of ENDPOINTS) {
      const key = role === "agent" ? agent : admin;
      for (const body of BODIES) {
        const raw = typeof body === "string" ? body : JSON.stringify(body);
        const answer = await call(url, key, method, path, raw, { "content-type": "application/json" });
        // `{}` is a complete request for a few endpoints (approve, reject, resume, register an agent): not malformed there.
        if (raw === "{}" && /approve|reject|resume|agents/.test(path)) continue;
        if (answer.status === 401 || answer.status === 403) failures.push(`${method} ${path}: rejected the key itself (${answer.status})`);
        else if (answer.status < 400 || answer.status >= 500) failures.push(`${method} ${path} ${raw.slice(0, 60)} → ${answer.status} ${answer.text.slice(0, 120)}`);
        else if (typeof answer.body?.error?.code !== "string") failures.push(`${method} ${path}: error body ${answer.text.slice(0, 80)}`);
      }
    }
    expect(failures).toEqual([]);
    const after = tableCounts(server);
    // Approve/reject/resume with `{}` are real decisions (they update rows and log them); nothing else may have written.
    expect({ ...after, org_ledger: 0, stream_events: 0 }).toEqual({ ...before, org_ledger: 0, stream_events: 0 });
    expect(after.org_ledger! - before.org_ledger!).toBeLessThanOrEqual(1);
  });

  it("a batch with one bad event among good ones refuses that one, by index, and writes the rest", async () => {
    const before = tableCounts(server);
    const events = [{ ...EVENTS[0]!, id: "evt_good1", runId: "run_good1" }, { ...EVENTS[2]!, id: "evt_good2", runId: "run_good1", toolCallId: "tc_good2" }, { ...EVENTS[3]!, id: "evt_bad", ts: "yesterday" }];
    const answer = await call(url, agent, "POST", "/v1/events", { events });
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ accepted: 2, duplicates: 0, rejected: [{ index: 2, id: "evt_bad", code: "invalid_event", reason: expect.stringContaining("ts") }] });
    expect(tableCounts(server).org_ledger).toBe(before.org_ledger + 2);
    expect((await call(url, admin, "GET", "/v1/runs/run_good1")).status).toBe(200);
    // Sent again, the good ones are duplicates and the bad one is rejected the same way.
    const again = await call(url, agent, "POST", "/v1/events", { events });
    expect(again.body).toMatchObject({ accepted: 0, duplicates: 2, rejected: [{ index: 2, id: "evt_bad" }] });
  });

  it("too large, wrong content type, too many events: 413, 415, 400", async () => {
    const before = tableCounts(server);
    expect((await call(url, admin, "PUT", "/v1/policies", { policies: { policies: [], x: "y".repeat(100_000) } })).status).toBe(413);
    expect((await call(url, agent, "POST", "/v1/events", { events: [{ ...EVENTS[0]!, data: { blob: "z".repeat(300_000) } }] })).status).toBe(413);
    const many = Array.from({ length: 1001 }, (_, i) => ({ ...EVENTS[0]!, id: `evt_many${i}`, data: {} }));
    expect((await call(url, agent, "POST", "/v1/events", { events: many })).status).toBe(400);
    expect((await call(url, agent, "POST", "/v1/events", JSON.stringify({ events: EVENTS }), { "content-type": "text/plain" })).status).toBe(415);
    expect((await call(url, agent, "POST", "/v1/events", "events=1", { "content-type": "application/x-www-form-urlencoded" })).status).toBe(415);
    expect([400, 415]).toContain((await call(url, agent, "POST", "/v1/events", JSON.stringify({ events: EVENTS }), { "content-type": "application/json; charset=utf-16" })).status);
    expect((await call(url, agent, "POST", "/v1/events", JSON.stringify({ events: EVENTS }), { "content-type": "application/json; charset=klingon" })).status).toBe(415);
    expect(tableCounts(server)).toEqual(before);
  });

  it("every GET refuses malformed queries with 400, and odd paths with 4xx", async () => {
    const failures: string[] = [];
    for (const path of GETS) {
      for (const query of QUERIES) {
        const answer = await call(url, admin, "GET", path + query);
        if (answer.status < 400 || answer.status >= 500) failures.push(`GET ${path}${query} → ${answer.status}`);
      }
    }
    for (const path of ["/v1/runs/%E0%A4%A", "/v1/runs/" + "x".repeat(10_000), "/v1/approvals/%00/approve", "/v1/policies/versions/-1", "/v1/policies/versions/1.5", "/v1/keys/%2e%2e"]) {
      const answer = await call(url, admin, path.includes("approve") ? "POST" : "GET", path, path.includes("approve") ? {} : undefined);
      if (answer.status < 400 || answer.status >= 500) failures.push(`${path.slice(0, 40)} → ${answer.status}`);
    }
    expect(failures).toEqual([]);
  });

  it("bad credentials and headers: 401, 400, 404; never 5xx", async () => {
    for (const authorization of ["Bearer", "Basic YWRtaW46YWRtaW4=", "Bearer wdn_short", `Bearer ${admin}x`, `Bearer  ${"a".repeat(5000)}`, "bearer"]) {
      const answer = await call(url, undefined, "GET", "/v1/runs", undefined, { authorization });
      expect(answer.status, authorization.slice(0, 30)).toBe(401);
    }
    for (const lastEventId of ["abc", "-1", "1".repeat(30), "1 2"]) {
      expect((await call(url, admin, "GET", "/v1/stream", undefined, { "last-event-id": lastEventId })).status).toBe(400);
    }
    expect((await call(url, admin, "PATCH", "/v1/policies", {})).status).toBe(404);
    expect((await call(url, admin, "GET", "/v1/stream?topics=secrets")).status).toBe(400);
    expect((await call(url, agent, "GET", "/v1/stream?topics=runs")).status).toBe(403);
    expect((await call(url, admin, "PUT", "/v1/policies", { policies: "a: [" + "[".repeat(5000) })).status).toBeLessThan(500);
  });

  it("is still healthy afterwards, and its ledger verifies", async () => {
    expect((await call(url, undefined, "GET", "/v1/health")).body.status).toBe("ok");
    expect((await call(url, admin, "GET", "/v1/ledger/verify")).body.ok).toBe(true);
  });
});
