// Evidence from the control plane: a bundle for one tool call of one organization, under the policy
// version the server served, verified offline against the key the auditor pinned, and refused to
// other organizations.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyEvidence, Warden, type EvidenceBundle } from "agent-warden";
import { createWardenServer, SqliteControlPlaneStore, type WardenServer } from "agent-warden/server";

let server: WardenServer;
let url: string;
let dir: string;
const keys = { admin: "", agent: "", other: "" };

const api = async (key: string, method: string, path: string, body?: unknown) =>
  fetch(url + path, { method, headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, ...(body !== undefined && { body: JSON.stringify(body) }) });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "warden-server-evidence-"));
  server = createWardenServer({ store: new SqliteControlPlaneStore({ path: join(dir, "server.db"), checkpointEvery: 1000 }), console: false, onError: () => {} });
  keys.admin = (await server.store.createKey({ org: "acme", role: "admin" })).key;
  keys.agent = (await server.store.createKey({ org: "acme", role: "agent" })).key;
  keys.other = (await server.store.createKey({ org: "globex", role: "admin" })).key;
  url = (await server.listen(0)).url;
});

afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("evidence on the control plane", () => {
  it("a blocked refund's bundle names the policy version in force and verifies against the pinned key; tampering and other organizations fail", async () => {
    const policies = { version: 1, default: "allow", policies: [{ id: "no-refunds", when: { tool: "payments.refund" }, action: "block", description: "refunds go through finance" }] };
    expect((await api(keys.admin, "PUT", "/v1/policies", { policies })).status).toBe(201);
    const pinned = (await (await api(keys.admin, "GET", "/v1/ledger/key")).json()) as { origin: string; verifierKey: string; publicKey: string };
    expect(pinned.origin).toMatch(/^agent-warden\.dev\/ledger\/[0-9a-f]{16}\/org\/acme$/);

    const warden = new Warden({ agentId: "billing-agent", url, apiKey: keys.agent, store: ":memory:", remote: { cacheDir: join(dir, "cache"), pollInterval: 50, flushInterval: 20 }, onError: () => {} });
    expect(await warden.ready()).toBe(true);
    let toolCallId = "";
    warden.on("tool.blocked", (event) => (toolCallId = event.toolCallId ?? ""));
    await warden.run({ task: "refund 1042" }, async (run) => {
      const refused = await run.tool("payments.refund", { amount: 100 }, () => "refunded").catch((error: Error) => error);
      expect(refused).toBeInstanceOf(Error);
    });
    await warden.remote!.flush();
    await warden.shutdown();
    expect(toolCallId).toMatch(/^tc_/);

    const response = await api(keys.admin, "GET", `/v1/evidence/${toolCallId}`);
    expect(response.status).toBe(200);
    const bundle = (await response.json()) as EvidenceBundle;
    expect(bundle.log).toEqual({ origin: pinned.origin, verifierKey: pinned.verifierKey });
    const result = await verifyEvidence(bundle, { publicKey: pinned.publicKey });
    expect(result).toMatchObject({ ok: true, key: { source: "supplied" }, agentId: "billing-agent", subject: { kind: "toolCall", id: toolCallId } });
    if (!result.ok) return;
    expect(JSON.parse(result.policy!.text)).toMatchObject({ policies: [{ id: "no-refunds", action: "block" }] });
    expect(result.statement).toMatch(/under policy set [0-9a-f]{16}/);
    expect(bundle.entries.some((entry) => entry.type === "tool.blocked")).toBe(true);

    // An edited decision, a bundle presented as another organization's, another organization asking.
    const edited = JSON.parse(JSON.stringify(bundle)) as EvidenceBundle;
    const blocked = edited.entries.find((entry) => entry.type === "tool.blocked")!;
    blocked.dataJson = blocked.dataJson.replace("no-refunds", "allowed-refunds");
    expect(await verifyEvidence(edited, { publicKey: pinned.publicKey })).toMatchObject({ ok: false, problem: expect.stringMatching(/modified/) });
    const moved = JSON.parse(JSON.stringify(bundle)) as EvidenceBundle;
    moved.log.origin = moved.log.origin.replace("/org/acme", "/org/globex");
    expect((await verifyEvidence(moved, { publicKey: pinned.publicKey })).ok).toBe(false);
    const foreign = await api(keys.other, "GET", `/v1/evidence/${toolCallId}`);
    expect(foreign.status).toBe(404);
    expect((await api(keys.agent, "GET", `/v1/evidence/${toolCallId}`)).status).toBe(403);
    expect((await api(keys.admin, "GET", "/v1/evidence/tc_missing")).status).toBe(404);
  });
});
