// Reviewer rules on the control plane, attacked from the inside: a valid reviewer key of the wrong
// identity, a key claiming another reviewer's name, the agent approving its own request (with its own
// key, an agent-bound reviewer key, or the admin key it asked with), a second approval from the same
// reviewer. Each is refused with 403, recorded in the ledger, and decides nothing. N of M is counted in
// the database: two replicas on one database (SQLite file, PostgreSQL) answering at once count both.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createWardenServer, PostgresControlPlaneStore, type WardenServer } from "agent-warden/server";
import { POSTGRES_SKIP, startPostgres, type PostgresCluster } from "./fixtures/postgres.js";

const FAR = 4_102_444_800_000;

const POLICIES = {
  version: 1,
  default: "allow",
  policies: [
    { id: "two-leads", when: { tool: "refund" }, action: "require_approval", approval: { approvers: 2, from: ["group:payments-leads", "alice@example.com"] } },
    { id: "any-reviewer", when: { tool: "deploy" }, action: "require_approval" },
    { id: "escalating", when: { tool: "wire" }, action: "require_approval", approval: { from: ["alice@example.com"], escalate: { after: 1200, to: ["group:finance"] } } },
  ],
};

async function call(url: string, key: string, method: string, path: string, body?: unknown) {
  const response = await fetch(url + path, { method, headers: { authorization: `Bearer ${key}`, ...(body !== undefined && { "content-type": "application/json" }) }, ...(body !== undefined && { body: JSON.stringify(body) }) });
  const text = await response.text();
  let parsed: any;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = text;
  }
  return { status: response.status, body: parsed };
}

interface Backend {
  name: string;
  skip: string | undefined;
  /** Two servers on one database. */
  start(): Promise<{ servers: WardenServer[]; stop(): Promise<void> }>;
}

let cluster: PostgresCluster | undefined;
const backends: Backend[] = [
  {
    name: "SQLite (two servers on one file)",
    skip: undefined,
    async start() {
      const dir = mkdtempSync(join(tmpdir(), "warden-reviewers-"));
      const db = join(dir, "warden.db");
      const first = createWardenServer({ db, console: false, onError: () => {} });
      const second = createWardenServer({ db, console: false, onError: () => {} });
      return { servers: [first, second], stop: async () => rmSync(dir, { recursive: true, force: true }) };
    },
  },
  {
    name: "PostgreSQL (two replicas)",
    skip: POSTGRES_SKIP,
    async start() {
      cluster = await startPostgres();
      const database = cluster.createDatabase("warden_reviewers");
      const servers = [0, 1].map(() => createWardenServer({ database, console: false, onError: () => {} }));
      await Promise.all(servers.map((server) => (server.store as PostgresControlPlaneStore).ready()));
      return { servers, stop: async () => cluster?.stop() };
    },
  },
];

for (const backend of backends) {
  describe.skipIf(backend.skip !== undefined)(`reviewer rules on the control plane: ${backend.name}${backend.skip ? ` (skipped: ${backend.skip})` : ""}`, () => {
    let servers: WardenServer[] = [];
    let stop: () => Promise<void> = async () => {};
    const urls: string[] = [];
    const key: Record<string, string> = {};
    let sequence = 0;

    beforeAll(async () => {
      ({ servers, stop } = await backend.start());
      for (const server of servers) urls.push((await server.listen(0)).url);
      const store = servers[0]!.store;
      const make = async (name: string, role: "admin" | "reviewer" | "agent", extra: { agentId?: string; groups?: string[] } = {}) => (key[name] = (await store.createKey({ org: "acme", role, name, ...extra })).key);
      await make("root", "admin");
      await make("agent", "agent", { agentId: "billing-agent" });
      await make("alice@example.com", "reviewer");
      await make("bob", "reviewer", { groups: ["payments-leads"] });
      await make("carol", "reviewer", { groups: ["payments-leads", "finance"] });
      await make("mallory", "reviewer", { groups: ["support"] });
      await make("billing-agent-reviewer", "reviewer", { agentId: "billing-agent", groups: ["payments-leads"] });
      // An agent process misconfigured with an admin key: it asks with that key.
      await make("deploy-bot", "admin", { groups: ["payments-leads"] });
      expect((await call(urls[0]!, key.root!, "PUT", "/v1/policies", { policies: POLICIES })).status).toBe(201);
    }, 120_000);

    afterAll(async () => {
      for (const server of servers) await server.close();
      await stop();
    });

    const ask = async (toolName: "refund" | "deploy" | "wire", as = key.agent!, policyId = toolName === "refund" ? "two-leads" : toolName === "wire" ? "escalating" : "any-reviewer") => {
      const approvalId = `apr_reviewers${String(++sequence).padStart(6, "0")}`;
      const created = await call(urls[0]!, as, "POST", "/v1/approvals", { approvalId, toolCallId: `tc_rev${sequence}`, runId: "run_rev1", agentId: "billing-agent", toolName, policyId, payload: { amount: 9000 }, expiresAt: FAR });
      expect(created.status).toBe(201);
      return { approvalId, record: created.body };
    };
    const answer = (url: string, as: string, approvalId: string, verb: "approve" | "reject", body: Record<string, unknown> = {}) => call(url, as, "POST", `/v1/approvals/${approvalId}/${verb}`, body);
    const state = async (approvalId: string) => (await call(urls[1]!, key.root!, "GET", `/v1/approvals/${approvalId}`)).body;
    const refusals = async (approvalId: string) => {
      const text = await (await fetch(`${urls[0]}/v1/ledger/export?limit=10000`, { headers: { authorization: `Bearer ${key.root}` } })).text();
      return text
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line))
        .filter((entry) => entry.type === "risk.detected" && entry.data.approvalId === approvalId);
    };

    it("the request carries the rule of the control plane's policy, not one the agent chose", async () => {
      const { record } = await ask("refund");
      expect(record.rule).toEqual({ approvers: 2, from: ["group:payments-leads", "alice@example.com"] });
      // The agent sending a weaker rule for a policy the control plane knows changes nothing.
      const weaker = await call(urls[0]!, key.agent!, "POST", "/v1/approvals", { toolCallId: "tc_weaker", runId: "run_rev1", agentId: "billing-agent", toolName: "refund", policyId: "two-leads", rule: { approvers: 1 }, expiresAt: FAR });
      expect(weaker.body.rule).toEqual({ approvers: 2, from: ["group:payments-leads", "alice@example.com"] });
    });

    it("an insider with a valid reviewer key outside `from` is refused (403), recorded, and nothing is decided", async () => {
      const { approvalId } = await ask("refund");
      for (const verb of ["approve", "reject"] as const) {
        const refused = await answer(urls[0]!, key.mallory!, approvalId, verb, { reason: "looks fine" });
        expect(refused.status).toBe(403);
        expect(refused.body.error).toMatchObject({ code: "reviewer_not_allowed" });
        expect(refused.body.error.message).toMatch(/reviewer "mallory" may not answer .*not among the policy's reviewers/);
      }
      expect(await state(approvalId)).toMatchObject({ status: "pending" });
      expect((await state(approvalId)).approvedBy).toBeUndefined();
      const recorded = await refusals(approvalId);
      expect(recorded).toHaveLength(2);
      expect(recorded[0]).toMatchObject({ actor: "mallory", data: { refusedReviewer: "mallory", groups: ["support"], via: "api", decision: "approved", severity: "high" } });
      expect(recorded[1].data.decision).toBe("rejected");
    });

    it("a key may not claim another reviewer's name where the policy names its reviewers", async () => {
      const { approvalId } = await ask("refund");
      const claimed = await answer(urls[0]!, key.mallory!, approvalId, "approve", { reviewer: "alice@example.com" });
      expect(claimed.status).toBe(403);
      expect(claimed.body.error.message).toMatch(/answers as its own identity \("mallory"\)/);
      expect(await state(approvalId)).toMatchObject({ status: "pending" });
      expect((await refusals(approvalId))[0].data).toMatchObject({ refusedReviewer: "alice@example.com", keyId: expect.stringMatching(/^key_/) });
    });

    it("the agent never approves itself: its agent key, a reviewer key bound to it, the admin key it asked with", async () => {
      const { approvalId } = await ask("deploy");
      const own = await answer(urls[0]!, key.agent!, approvalId, "approve");
      expect(own.status).toBe(403);
      expect(own.body.error.code).toBe("insufficient_scope");
      const bound = await answer(urls[0]!, key["billing-agent-reviewer"]!, approvalId, "approve");
      expect(bound.status).toBe(403);
      expect(bound.body.error).toMatchObject({ code: "reviewer_not_allowed", message: expect.stringMatching(/requesting agent cannot answer its own request/) });
      // Named as the agent: refused whatever the key.
      const named = await answer(urls[0]!, key.root!, approvalId, "approve", { reviewer: "billing-agent" });
      expect(named.status).toBe(403);

      const asked = await ask("refund", key["deploy-bot"]!);
      const self = await answer(urls[1]!, key["deploy-bot"]!, asked.approvalId, "approve");
      expect(self.status).toBe(403);
      expect(self.body.error.message).toMatch(/the key that asked for this approval cannot answer it/);
      expect(await state(approvalId)).toMatchObject({ status: "pending" });
      expect(await state(asked.approvalId)).toMatchObject({ status: "pending" });
      expect(await refusals(approvalId)).toHaveLength(2);
      expect(await refusals(asked.approvalId)).toHaveLength(1);
    });

    it("N of M: a second approval by the same reviewer is refused; two distinct reviewers on two servers decide it", async () => {
      const { approvalId } = await ask("refund");
      const first = await answer(urls[0]!, key["alice@example.com"]!, approvalId, "approve", { reason: "checked the order" });
      expect(first.status).toBe(200);
      expect(first.body).toMatchObject({ status: "pending", approvedBy: ["alice@example.com"] });
      const again = await answer(urls[1]!, key["alice@example.com"]!, approvalId, "approve");
      expect(again.status).toBe(403);
      expect(again.body.error.message).toMatch(/already approved; another reviewer must/);
      expect(await state(approvalId)).toMatchObject({ status: "pending", approvedBy: ["alice@example.com"] });
      const second = await answer(urls[1]!, key.bob!, approvalId, "approve");
      expect(second.status).toBe(200);
      expect(second.body).toMatchObject({ status: "approved", reviewer: "alice@example.com, bob", approvedBy: ["alice@example.com", "bob"] });
      expect(await refusals(approvalId)).toHaveLength(1);
    });

    it("N of M counted in the database: two reviewers answering at once on two servers both count", async () => {
      for (let round = 0; round < 5; round++) {
        const { approvalId } = await ask("refund");
        const answers = await Promise.all([answer(urls[0]!, key.bob!, approvalId, "approve"), answer(urls[1]!, key.carol!, approvalId, "approve")]);
        expect(answers.map((a) => a.status)).toEqual([200, 200]);
        const final = await state(approvalId);
        expect(final.status).toBe("approved");
        expect([...final.approvedBy].sort()).toEqual(["bob", "carol"]);
      }
    });

    it("escalation: the escalation set may answer once `after` has passed; the sweep records it once, across both servers", async () => {
      const { approvalId } = await ask("wire");
      const early = await answer(urls[1]!, key.carol!, approvalId, "approve");
      expect(early.status).toBe(403);
      expect(early.body.error.message).toMatch(/not among the policy's reviewers$/);
      const escalated = await (async () => {
        for (let i = 0; i < 200; i++) {
          const record = await state(approvalId);
          if (record.escalatedAt !== undefined) return record;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        throw new Error("never escalated");
      })();
      expect(escalated.escalatedAt).toBeGreaterThanOrEqual(escalated.createdAt + 1200);
      const history = (await call(urls[0]!, key.root!, "GET", `/v1/approvals/${approvalId}/history`)).body.timeline;
      expect(history.filter((item: { kind: string }) => item.kind === "escalated")).toEqual([expect.objectContaining({ to: ["group:finance"] })]);
      expect((await answer(urls[0]!, key.carol!, approvalId, "approve", { reason: "finance on call" })).body).toMatchObject({ status: "approved", reviewer: "carol" });
      expect(history.map((item: { kind: string }) => item.kind)).toEqual(["requested", "asked", "refused", "escalated"]);
    });

    it("without named reviewers the key's own name is recorded, and the CLI's label still works", async () => {
      const { approvalId } = await ask("deploy");
      const decided = await answer(urls[0]!, key.mallory!, approvalId, "approve");
      expect(decided.body).toMatchObject({ status: "approved", reviewer: "mallory" });
    });
  });
}
