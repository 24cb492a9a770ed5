// Two agent processes in remote mode and a control plane in a third: policy updates, approvals and
// halts made through the API reach both; the control plane is killed mid-run and restarted, the
// agents keep working, and every event they recorded is stored exactly once.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SqliteControlPlaneStore } from "../src/server/sqlite-store.js";
import { tempDir } from "./fixtures/proc.js";
import { startRemoteAgent, startServerProcess, type JsonLinesProcess } from "./fixtures/remote-proc.js";

const AGENTS = ["agent-a", "agent-b"] as const;

describe("remote mode: two agent processes and a control plane", () => {
  const { dir, cleanup } = tempDir("warden-remote-");
  const db = join(dir, "server.db");
  let server: Awaited<ReturnType<typeof startServerProcess>>;
  let admin: string;
  let agentKey: string;
  const agents = new Map<string, JsonLinesProcess>();

  const api = async (method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown; text: string }> => {
    const response = await fetch(server.url + path, { method, headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" }, ...(body !== undefined && { body: JSON.stringify(body) }) });
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    return { status: response.status, body: parsed, text };
  };

  /** Asks every agent until `accept` holds for its answer (failing after `timeoutMs`). */
  const until = async (check: Record<string, unknown>, accept: (line: Record<string, unknown>) => boolean, timeoutMs = 10_000): Promise<void> => {
    const started = Date.now();
    for (const agent of agents.values()) {
      for (;;) {
        const answer = await agent.ask({ cmd: "check", ...check }, "decision");
        if (accept(answer)) break;
        if (Date.now() - started > timeoutMs) throw new Error(`not within ${timeoutMs} ms: ${JSON.stringify(answer)}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
  };

  beforeAll(async () => {
    // Keys as `warden keys create` makes them: on the database, before the server starts.
    const store = new SqliteControlPlaneStore({ path: db });
    admin = (await store.createKey({ org: "acme", role: "admin", name: "ops" })).key;
    agentKey = (await store.createKey({ org: "acme", role: "agent", name: "fleet" })).key;
    await store.close();
    server = await startServerProcess({ db });
    for (const agentId of AGENTS) {
      agents.set(agentId, startRemoteAgent({ url: server.url, apiKey: agentKey, agentId, group: "billing", store: join(dir, `${agentId}.db`), cacheDir: join(dir, "cache", agentId), staleAfter: 15_000 }));
    }
    for (const agent of agents.values()) expect((await agent.ask({ cmd: "ready" }, "ready")).synced).toBe(true);
  }, 60_000);

  afterAll(async () => {
    for (const agent of agents.values()) agent.kill();
    server?.process.kill("SIGTERM");
    await server?.process.exited;
    cleanup();
  });

  it("a policy updated on the server changes both agents' decisions", async () => {
    await until({ tool: "deploy" }, (d) => d.action === "allow");
    const put = await api("PUT", "/v1/policies", { policies: { policies: [{ id: "no-deploy", when: { tool: "deploy" }, action: "block", reason: "deploys are frozen" }] } });
    expect(put.status).toBe(201);
    await until({ tool: "deploy" }, (d) => d.action === "block" && d.reason === "deploys are frozen");
    await until({ tool: "read_order" }, (d) => d.action === "allow");
  });

  it("an approval given through the API unblocks the waiting agent; a rejection refuses the call", async () => {
    await api("PUT", "/v1/policies", { policies: { policies: [{ id: "approve-refunds", when: { tool: "refund" }, action: "require_approval" }] } });
    await until({ tool: "refund" }, (d) => d.action === "require_approval");
    const a = agents.get("agent-a")!;
    const b = agents.get("agent-b")!;
    a.send({ cmd: "tool", id: "refund-a", tool: "refund", args: { amount: 100 } });
    b.send({ cmd: "tool", id: "refund-b", tool: "refund", args: { amount: 200 } });
    let pending: Array<{ approvalId: string; agentId: string; payload: unknown }> = [];
    for (let i = 0; i < 200 && pending.length < 2; i++) {
      pending = ((await api("GET", "/v1/approvals?status=pending")).body as { items: typeof pending }).items;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(pending.map((p) => p.agentId).sort()).toEqual(["agent-a", "agent-b"]);
    const forA = pending.find((p) => p.agentId === "agent-a")!;
    const forB = pending.find((p) => p.agentId === "agent-b")!;
    expect(forA.payload).toEqual({ amount: 100 });
    expect((await api("POST", `/v1/approvals/${forA.approvalId}/approve`, { reviewer: "alice", reason: "fine" })).status).toBe(200);
    expect(await a.expect("tool", { id: "refund-a" })).toMatchObject({ ok: true, result: "refund done" });
    expect((await api("POST", `/v1/approvals/${forB.approvalId}/reject`, { reason: "too much" })).status).toBe(200);
    expect(await b.expect("tool", { id: "refund-b" })).toMatchObject({ ok: false, error: { code: "approval_rejected" } });
  });

  it("a halt through the API reaches both agents at once; resume lifts it", async () => {
    const halted = await api("POST", "/v1/halts", { group: "billing", reason: "runaway refunds" });
    expect(halted.status).toBe(201);
    await until({ tool: "read_order" }, (d) => d.halted === true && String(d.reason).includes("runaway refunds"));
    for (const agent of agents.values()) expect((await agent.ask({ cmd: "status" }, "status")).halted).toBe(true);
    await api("POST", "/v1/halts/resume", { group: "billing" });
    await until({ tool: "read_order" }, (d) => d.action === "allow");
    await api("POST", "/v1/halts", { reason: "everything stops" });
    await until({ tool: "read_order" }, (d) => d.halted === true);
    await api("POST", "/v1/halts/resume", {});
    await until({ tool: "read_order" }, (d) => d.action === "allow");
  });

  it("the control plane killed mid-run and restarted: the agents keep working, every event is stored exactly once", async () => {
    for (const agent of agents.values()) await agent.ask({ cmd: "work", tool: "read_order", intervalMs: 5 }, "working");
    await new Promise((resolve) => setTimeout(resolve, 500));
    server.process.kill("SIGKILL");
    await server.process.exited;
    const during = new Map<string, number>();
    for (const [id, agent] of agents) during.set(id, (await agent.ask({ cmd: "status" }, "status")).ok as number);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    for (const [id, agent] of agents) {
      const status = await agent.ask({ cmd: "status" }, "status");
      expect(status.ok as number, `${id} kept working while the server was down`).toBeGreaterThan(during.get(id)! + 10);
      expect(status.failed).toBe(0);
      expect((status.remote as { spooledBytes: number }).spooledBytes, `${id} spooled its events`).toBeGreaterThan(0);
    }
    server = await startServerProcess({ db, port: server.port });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const recorded: string[] = [];
    for (const agent of agents.values()) {
      const stopped = await agent.ask({ cmd: "stop" }, "stopped");
      expect(stopped.failed, JSON.stringify(stopped.failures)).toBe(0);
      const done = await agent.ask({ cmd: "shutdown" }, "shutdown", {}, 30_000);
      expect((done.remote as { spooledBytes: number; queued: number }).spooledBytes).toBe(0);
      recorded.push(...(done.eventIds as string[]));
    }
    const exported = await api("GET", "/v1/ledger/export?limit=1000000");
    const counts = new Map<string, number>();
    for (const line of exported.text.split("\n").filter(Boolean)) {
      const id = (JSON.parse(line) as { id: string }).id;
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    expect(recorded.length).toBeGreaterThan(500);
    const missing = recorded.filter((id) => !counts.has(id));
    const doubled = [...counts].filter(([, n]) => n > 1);
    expect(missing).toEqual([]);
    expect(doubled).toEqual([]);
    expect(new Set(recorded).size).toBe(recorded.length);
    const verified = (await api("GET", "/v1/ledger/verify")).body as { ok: boolean };
    expect(verified.ok).toBe(true);
  }, 60_000);
});
