// The control plane's roles, attacked by a compromised agent: an agent key bound to `acme-bot` tries
// to revoke, decide, take over another agent's run, read another agent's approvals, hold every stream
// slot, probe other organizations' approval ids, and act while halted. Each attempt fails.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createWardenServer, SqliteControlPlaneStore, type WardenServer } from "agent-warden/server";
import { loadOrCreateKey } from "../src/ledger/keys.js";
import { SqliteStore } from "../src/store/sqlite-store.js";
import { SERVER_SCHEMA_SQL } from "../src/server/schema.js";

const FAR = 4_102_444_800_000;
let n = 0;
function event(type: string, fields: Record<string, unknown>, data: Record<string, unknown> = {}) {
  return { id: `evt_roles${++n}`, type, ts: Date.now(), agentId: "acme-bot", runId: null, stepId: null, toolCallId: null, actor: null, ...fields, data };
}

async function call(url: string, key: string | undefined, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(url + path, {
    method,
    headers: { ...(key && { authorization: `Bearer ${key}` }), ...(body !== undefined && { "content-type": "application/json" }), ...headers },
    ...(body !== undefined && { body: typeof body === "string" || body instanceof Uint8Array ? body : JSON.stringify(body) }),
  });
  const text = await response.text();
  let parsed: any;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = text;
  }
  return { status: response.status, body: parsed, text };
}

describe("an agent key reports only what its agent may say about itself", () => {
  let server: WardenServer;
  let url: string;
  const errors: unknown[] = [];
  const key = { admin: "", reviewer: "", bot: "", hr: "" };

  beforeAll(async () => {
    server = createWardenServer({ db: ":memory:", console: true, maxStreamsPerKey: 2, onError: (error) => errors.push(error) });
    key.admin = (await server.store.createKey({ org: "acme", role: "admin", name: "root" })).key;
    key.reviewer = (await server.store.createKey({ org: "acme", role: "reviewer", name: "alice" })).key;
    key.bot = (await server.store.createKey({ org: "acme", role: "agent", name: "bot-key", agentId: "acme-bot" })).key;
    key.hr = (await server.store.createKey({ org: "acme", role: "agent", name: "hr-key", agentId: "hr-agent" })).key;
    url = (await server.listen(0)).url;
    // hr-agent's world: a run with a blocked call and a pending approval carrying a salary.
    const hr = (type: string, fields: Record<string, unknown>, data: Record<string, unknown> = {}) => event(type, { agentId: "hr-agent", runId: "run_hr", ...fields }, data);
    const seeded = await call(url, key.hr, "POST", "/v1/events", {
      events: [
        hr("run.started", {}, { traceId: "trace_hr" }),
        hr("tool.called", { toolCallId: "tc_hr_blocked" }, { toolName: "payroll.export", decision: "block", input: {} }),
        hr("tool.blocked", { toolCallId: "tc_hr_blocked" }, { toolName: "payroll.export", reason: "never" }),
        hr("tool.called", { toolCallId: "tc_hr_raise" }, { toolName: "salary.set", decision: "require_approval", input: { salary: 250_000 } }),
      ],
    });
    expect(seeded.body).toEqual({ accepted: 4, duplicates: 0 });
    expect((await call(url, key.hr, "POST", "/v1/approvals", { approvalId: "apr_hrsalary0001", toolCallId: "tc_hr_raise", runId: "run_hr", agentId: "hr-agent", toolName: "salary.set", payload: { salary: 250_000 }, expiresAt: FAR })).status).toBe(201);
  });

  afterAll(async () => {
    await server.close();
  });

  const ledgerTypes = async () =>
    (await call(url, key.admin, "GET", "/v1/ledger/export")).text
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { id: string; type: string; actor: string | null });

  it("a token.revoked event from an agent key revokes nothing", async () => {
    const minted = (await call(url, key.admin, "POST", "/v1/tokens", { agentId: "hr-agent", scopes: ["payroll:*"], ttl: "1h" })).body;
    const attack = event("token.revoked", { agentId: null }, { tokenId: minted.tokenId, reason: "mine now" });
    const answer = await call(url, key.bot, "POST", "/v1/events", { events: [attack] });
    expect(answer.body).toEqual({ accepted: 0, duplicates: 0, rejected: [{ index: 0, id: attack.id, code: "insufficient_scope", reason: expect.stringContaining("/v1/tokens/revoke") }] });
    expect((await call(url, key.hr, "POST", "/v1/tokens/verify", { token: minted.token })).body.valid).toBe(true);
    expect((await call(url, key.admin, "GET", "/v1/tokens/revoked")).body.items).toEqual([]);
  });

  it("run.started + tool.completed cannot take over another agent's run or complete its blocked call", async () => {
    const takeover = [
      event("run.started", { runId: "run_hr" }, { traceId: "trace_hr" }),
      event("tool.completed", { runId: "run_hr", toolCallId: "tc_hr_blocked" }, { toolName: "payroll.export", status: "completed", output: "forged" }),
      // Under the hr agent's name: the key is bound, so this is rejected too.
      event("tool.completed", { agentId: "hr-agent", runId: "run_hr", toolCallId: "tc_hr_blocked" }, { toolName: "payroll.export", status: "completed", output: "forged" }),
    ];
    const answer = await call(url, key.bot, "POST", "/v1/events", { events: takeover });
    expect(answer.body.accepted).toBe(0);
    expect(answer.body.rejected.map((r: { index: number; code: string }) => [r.index, r.code])).toEqual([
      [0, "insufficient_scope"],
      [1, "insufficient_scope"],
      [2, "insufficient_scope"],
    ]);
    const run = (await call(url, key.reviewer, "GET", "/v1/runs/run_hr")).body;
    expect(run.agentId).toBe("hr-agent");
    expect(run.toolCalls.find((c: { toolCallId: string }) => c.toolCallId === "tc_hr_blocked")).toMatchObject({ status: "blocked" });
    expect(JSON.stringify(run)).not.toContain("forged");
  });

  it("an agent cannot turn its own blocked call into a success", async () => {
    await call(url, key.bot, "POST", "/v1/events", {
      events: [event("run.started", { runId: "run_bot" }), event("tool.called", { runId: "run_bot", toolCallId: "tc_bot_blocked" }, { toolName: "deploy", decision: "block" }), event("tool.blocked", { runId: "run_bot", toolCallId: "tc_bot_blocked" }, { toolName: "deploy", reason: "no" })],
    });
    const rewrite = event("tool.completed", { runId: "run_bot", toolCallId: "tc_bot_blocked" }, { toolName: "deploy", status: "completed", output: "deployed" });
    const recall = event("tool.called", { runId: "run_bot", toolCallId: "tc_bot_blocked" }, { toolName: "harmless", decision: "allow", input: { disguised: true } });
    const answer = await call(url, key.bot, "POST", "/v1/events", { events: [rewrite, recall] });
    expect(answer.body.rejected).toEqual([{ index: 0, id: rewrite.id, code: "conflict", reason: expect.stringContaining("blocked") }]);
    const call_ = (await call(url, key.reviewer, "GET", "/v1/tool-calls/tc_bot_blocked")).body;
    expect(call_).toMatchObject({ status: "blocked", toolName: "deploy" });
    expect(JSON.stringify(call_)).not.toContain("disguised");
  });

  it("decisions and someone else's name never enter the ledger through ingest", async () => {
    const forged = [
      event("approval.approved", { runId: "run_hr", toolCallId: "tc_hr_raise", agentId: "hr-agent", actor: "alice" }, { approvalId: "apr_hrsalary0001", status: "approved", reviewer: "alice" }),
      event("approval.approved", { actor: "alice" }, { approvalId: "apr_hrsalary0001", status: "approved", reviewer: "alice" }),
      event("agent.resumed", { actor: "alice" }, { scope: "organization", haltIds: [] }),
      event("agent.halted", { actor: "alice" }, { scope: "agent", target: "hr-agent", haltId: "halt_forged00001", reason: "x" }),
      event("tool.called", { runId: "run_bot", toolCallId: "tc_bot_as_alice", actor: "alice" }, { toolName: "read", decision: "allow" }),
    ];
    const answer = await call(url, key.bot, "POST", "/v1/events", { events: forged });
    expect(answer.body.accepted).toBe(0);
    expect(answer.body.rejected.map((r: { index: number }) => r.index)).toEqual([0, 1, 2, 3, 4]);
    const ids = new Set(forged.map((e) => e.id));
    const entries = await ledgerTypes();
    expect(entries.filter((entry) => ids.has(entry.id))).toEqual([]);
    expect(entries.filter((entry) => entry.actor === "alice")).toEqual([]);
    expect((await call(url, key.reviewer, "GET", "/v1/approvals/apr_hrsalary0001")).body.status).toBe("pending");
    // Even an admin key does not halt or resume through ingest: that is what POST /v1/halts is for.
    expect((await call(url, key.admin, "POST", "/v1/events", { events: [event("agent.resumed", { agentId: null }, { scope: "organization" })] })).body.rejected).toHaveLength(1);
  });

  it("an agent's echo of a reviewer's decision is a duplicate, and it may withdraw its own pending request", async () => {
    await call(url, key.bot, "POST", "/v1/events", { events: [event("tool.called", { runId: "run_bot", toolCallId: "tc_bot_ask1" }, { toolName: "refund", decision: "require_approval" })] });
    expect((await call(url, key.bot, "POST", "/v1/approvals", { approvalId: "apr_botask000001", toolCallId: "tc_bot_ask1", runId: "run_bot", agentId: "acme-bot", toolName: "refund", expiresAt: FAR })).status).toBe(201);
    expect((await call(url, key.reviewer, "POST", "/v1/approvals/apr_botask000001/approve", {})).status).toBe(200);
    const before = (await ledgerTypes()).length;
    const echo = event("approval.approved", { runId: "run_bot", toolCallId: "tc_bot_ask1", actor: "alice" }, { approvalId: "apr_botask000001", status: "approved", reviewer: "alice" });
    expect((await call(url, key.bot, "POST", "/v1/events", { events: [echo] })).body).toEqual({ accepted: 0, duplicates: 1 });
    expect((await ledgerTypes()).length).toBe(before);

    await call(url, key.bot, "POST", "/v1/events", { events: [event("tool.called", { runId: "run_bot", toolCallId: "tc_bot_ask2" }, { toolName: "refund", decision: "require_approval" })] });
    expect((await call(url, key.bot, "POST", "/v1/approvals", { approvalId: "apr_botask000002", toolCallId: "tc_bot_ask2", runId: "run_bot", agentId: "acme-bot", toolName: "refund", expiresAt: FAR })).status).toBe(201);
    const withdraw = event("approval.rejected", { runId: "run_bot", toolCallId: "tc_bot_ask2" }, { approvalId: "apr_botask000002", status: "cancelled", reason: "caller gave up" });
    expect((await call(url, key.bot, "POST", "/v1/events", { events: [withdraw] })).body).toEqual({ accepted: 1, duplicates: 0 });
    expect((await call(url, key.bot, "GET", "/v1/approvals/apr_botask000002")).body.status).toBe("cancelled");
    // …but not another agent's.
    const other = event("approval.rejected", { runId: "run_hr", toolCallId: "tc_hr_raise" }, { approvalId: "apr_hrsalary0001", status: "cancelled" });
    expect((await call(url, key.bot, "POST", "/v1/events", { events: [other] })).body.rejected).toHaveLength(1);
  });

  it("an agent key reads its own agent's approvals only", async () => {
    expect((await call(url, key.bot, "GET", "/v1/approvals?agentId=hr-agent")).status).toBe(403);
    const mine = (await call(url, key.bot, "GET", "/v1/approvals")).body;
    expect(mine.items.length).toBeGreaterThan(0);
    expect(mine.items.every((item: { agentId: string }) => item.agentId === "acme-bot")).toBe(true);
    expect(JSON.stringify(mine)).not.toContain("250000");
    expect((await call(url, key.bot, "GET", "/v1/approvals/apr_hrsalary0001")).status).toBe(404);
    expect((await call(url, key.bot, "GET", "/v1/approvals/apr_unknown00001")).status).toBe(404);
    // Runs and tool calls are a reviewer's reading.
    expect((await call(url, key.bot, "GET", "/v1/runs/run_hr")).status).toBe(403);
    expect((await call(url, key.bot, "GET", "/v1/tool-calls/tc_hr_raise")).status).toBe(403);
  });

  it("the stream tells an agent key of its own approvals only", async () => {
    const controller = new AbortController();
    const response = await fetch(`${url}/v1/stream`, { headers: { authorization: `Bearer ${key.bot}`, "last-event-id": "0" }, signal: controller.signal });
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes("apr_botask000002")) text += (await reader.read()).value ?? "";
    controller.abort();
    expect(text).toContain("apr_botask000001");
    expect(text).not.toContain("apr_hrsalary0001");
    expect(text).not.toContain("250000");
  });

  it("one key cannot hold every stream slot of its organization", async () => {
    const controllers: AbortController[] = [];
    const open = async (secret: string) => {
      const controller = new AbortController();
      controllers.push(controller);
      const response = await fetch(`${url}/v1/stream`, { headers: { authorization: `Bearer ${secret}` }, signal: controller.signal });
      if (response.status === 200) {
        const reader = response.body!.getReader();
        await reader.read();
      } else await response.text();
      return response.status;
    };
    expect([await open(key.bot), await open(key.bot), await open(key.bot)]).toEqual([200, 200, 503]);
    expect(await open(key.hr)).toBe(200);
    for (const controller of controllers) controller.abort();
  });

  it("an approval id of another organization is answered as an unknown one", async () => {
    const globex = (await server.store.createKey({ org: "globex", role: "agent" })).key;
    const body = (approvalId: string) => ({ approvalId, toolCallId: "tc_g", runId: "run_g", agentId: "g-bot", toolName: "refund", expiresAt: FAR });
    const taken = await call(url, globex, "POST", "/v1/approvals", body("apr_hrsalary0001"));
    const unknown = await call(url, globex, "POST", "/v1/approvals", body("apr_globexnew001"));
    expect(taken.status).toBe(unknown.status);
    expect(Object.keys(taken.body).sort()).toEqual(Object.keys(unknown.body).sort());
    expect((await call(url, key.reviewer, "GET", "/v1/approvals/apr_hrsalary0001")).body).toMatchObject({ agentId: "hr-agent", toolName: "salary.set" });
  });

  it("a halted agent cannot ask for approvals, and its pending requests cannot be approved", async () => {
    // A group halt, and hr-agent joins the group afterwards: its request made before is still pending.
    expect((await call(url, key.admin, "POST", "/v1/halts", { group: "payroll", reason: "payroll incident" })).status).toBe(201);
    expect((await call(url, key.hr, "PUT", "/v1/agents/hr-agent", { group: "payroll" })).status).toBe(200);
    expect((await call(url, key.reviewer, "GET", "/v1/approvals/apr_hrsalary0001")).body.status).toBe("pending");
    const approve = await call(url, key.reviewer, "POST", "/v1/approvals/apr_hrsalary0001/approve", {});
    expect(approve.status).toBe(403);
    expect(approve.body.error.code).toBe("agent_halted");
    expect((await call(url, key.reviewer, "GET", "/v1/approvals/apr_hrsalary0001")).body.status).toBe("pending");
    // Rejecting stays possible: it takes nothing further.
    const ask = await call(url, key.hr, "POST", "/v1/approvals", { approvalId: "apr_hrhalted0001", toolCallId: "tc_hr_raise2", runId: "run_hr", agentId: "hr-agent", toolName: "salary.set", expiresAt: FAR });
    expect(ask.status).toBe(403);
    expect(ask.body.error.code).toBe("agent_halted");
    const viaIngest = event("approval.requested", { agentId: "hr-agent", runId: "run_hr", toolCallId: "tc_hr_raise3" }, { approvalId: "apr_hrhalted0002", toolName: "salary.set" });
    expect((await call(url, key.hr, "POST", "/v1/events", { events: [viaIngest] })).body.rejected).toEqual([expect.objectContaining({ index: 0, code: "insufficient_scope", reason: expect.stringContaining("halted") })]);
    expect((await call(url, key.reviewer, "GET", "/v1/approvals?agentId=hr-agent")).body.items.map((a: { approvalId: string }) => a.approvalId)).toEqual(["apr_hrsalary0001"]);
    expect((await call(url, key.reviewer, "POST", "/v1/approvals/apr_hrsalary0001/reject", {})).status).toBe(200);
  });

  it("a corrupt Content-Encoding is a 400 problem on every endpoint, signed in or not, and logs nothing", async () => {
    const before = errors.length;
    const corrupt = [
      ["gzip", "not gzip at all"],
      ["deflate", "not deflate"],
      ["br", "not brotli"],
      ["gzip", gzipSync(JSON.stringify({ events: [] })).subarray(0, 12)],
    ] as const;
    for (const [path, secret] of [
      ["/v1/events", key.bot],
      ["/v1/approvals", key.bot],
      ["/v1/halts", key.admin],
      ["/console/session", undefined],
    ] as const) {
      for (const [encoding, body] of corrupt) {
        const answer = await call(url, secret, "POST", path, body, { "content-encoding": encoding });
        expect([path, encoding, answer.status, answer.body?.error?.code]).toEqual([path, encoding, 400, "invalid_request"]);
        expect(answer.text).not.toMatch(/at .*\.js|zlib|Z_/);
      }
    }
    expect(errors.slice(before)).toEqual([]);
  });
});

describe("a store that kept one chain for every organization", () => {
  it("is moved to one chain per organization on start, and each verifies on its own", async () => {
    const dir = mkdtempSync(join(tmpdir(), "warden-chain-"));
    try {
      const path = join(dir, "warden.db");
      // The previous layout: every organization's entries in the embedded store's single chain.
      const old = new SqliteStore({ path, signer: loadOrCreateKey(join(dir, "keys", "ledger.pem")), checkpointEvery: 1000, checkpointIntervalMs: 10_000, onError: () => {} });
      old.db.exec(SERVER_SCHEMA_SQL);
      for (let i = 0; i < 9; i++) {
        const org = i % 3 === 0 ? "acme" : "globex";
        old.append({ id: `evt_old${i}`, ts: 1_700_000_000_000 + i, type: "token.revoked", org, agentId: null, runId: null, stepId: null, toolCallId: null, actor: "ops", dataJson: JSON.stringify({ tokenId: `t${i}` }) });
      }
      old.close();

      const store = new SqliteControlPlaneStore({ path });
      const entries = async (org: string) => {
        const out = [];
        for await (const entry of store.exportLedger(org, { afterSeq: 0, limit: 100 })) out.push(entry);
        return out;
      };
      const acme = await entries("acme");
      expect(acme.map((e) => [e.seq, e.type, e.id])).toEqual([
        [1, "ledger.migrated", expect.any(String)],
        [2, "token.revoked", "evt_old0"],
        [3, "token.revoked", "evt_old3"],
        [4, "token.revoked", "evt_old6"],
      ]);
      expect(acme[0]!.data).toEqual({ from: "shared chain", verified: true });
      expect((await entries("globex")).map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
      expect(await store.verifyLedger("acme")).toMatchObject({ ok: true, entries: 4 });
      expect(await store.verifyLedger("globex")).toMatchObject({ ok: true, entries: 7 });
      await store.close();
      // Opening it again moves nothing twice.
      const again = new SqliteControlPlaneStore({ path });
      expect(await again.verifyLedger("acme")).toMatchObject({ ok: true, entries: 4 });
      await again.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
