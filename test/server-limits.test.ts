// Limits on what one caller can hold or change: streams per organization, streams of revoked
// keys, and approvals an agent did not ask for.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createWardenServer, type WardenServer } from "agent-warden/server";

const FAR = 4_102_444_800_000;

function openStream(url: string, key: string): { status: Promise<number>; ended: Promise<void>; close: () => void } {
  const controller = new AbortController();
  const response = fetch(`${url}/v1/stream`, { headers: { authorization: `Bearer ${key}` }, signal: controller.signal });
  const ended = response
    .then(async (r) => {
      if (!r.body) return;
      const reader = r.body.getReader();
      for (;;) if ((await reader.read()).done) return;
    })
    .catch(() => undefined);
  return { status: response.then((r) => r.status), ended, close: () => controller.abort() };
}

async function post(url: string, key: string, path: string, body: unknown): Promise<number> {
  const response = await fetch(url + path, { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body: JSON.stringify(body) });
  await response.arrayBuffer();
  return response.status;
}

describe("control plane limits", () => {
  let server: WardenServer;
  let url: string;

  beforeEach(async () => {
    server = createWardenServer({ db: ":memory:", console: false, maxStreams: 2, onError: () => {} });
    url = (await server.listen(0)).url;
  });

  afterEach(async () => {
    await server.close();
  });

  it("an organization holds at most maxStreams streams; beyond it 503 with Retry-After, and other organizations are not affected", async () => {
    const acme = (await server.store.createKey({ org: "acme", role: "reviewer" })).key;
    const globex = (await server.store.createKey({ org: "globex", role: "reviewer" })).key;
    const open = [openStream(url, acme), openStream(url, acme)];
    expect(await Promise.all(open.map((s) => s.status))).toEqual([200, 200]);
    const refused = await fetch(`${url}/v1/stream`, { headers: { authorization: `Bearer ${acme}` } });
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("5");
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("unavailable");
    const other = openStream(url, globex);
    expect(await other.status).toBe(200);
    for (const stream of [...open, other]) stream.close();
  });

  it("revoking a key ends the streams it opened", async () => {
    const admin = (await server.store.createKey({ org: "acme", role: "admin" })).key;
    const { key, record } = await server.store.createKey({ org: "acme", role: "reviewer" });
    const stream = openStream(url, key);
    expect(await stream.status).toBe(200);
    const response = await fetch(`${url}/v1/keys/${record.keyId}`, { method: "DELETE", headers: { authorization: `Bearer ${admin}` } });
    expect(response.status).toBe(200);
    await stream.ended;
  });

  it("an agent key may give up on its own agent's approval request, not on another agent's", async () => {
    const agent = (await server.store.createKey({ org: "acme", role: "agent" })).key;
    for (const [approvalId, agentId] of [["apr_own000000001", "agent-1"], ["apr_other0000001", "agent-2"]] as const) {
      expect(await post(url, agent, "/v1/approvals", { approvalId, toolCallId: `tc_${agentId}`, runId: `run_${agentId}`, agentId, toolName: "refund", expiresAt: FAR })).toBe(201);
    }
    const giveUp = (approvalId: string, id: string) => ({ id, type: "approval.rejected", ts: Date.now(), agentId: "agent-1", runId: "run_agent-1", stepId: null, toolCallId: "tc_agent-1", actor: null, data: { approvalId, status: "cancelled" } });
    expect(await post(url, agent, "/v1/events", { events: [giveUp("apr_own000000001", "evt_giveup1"), giveUp("apr_other0000001", "evt_giveup2")] })).toBe(200);
    expect((await server.store.getApproval("acme", "apr_own000000001"))?.status).toBe("cancelled");
    expect((await server.store.getApproval("acme", "apr_other0000001"))?.status).toBe("pending");
  });
});
