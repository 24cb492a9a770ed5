// One hash chain per organization: each organization's ledger is numbered from 1, verifies on its
// own (its export alone is enough), and tampering is reported to the organization whose chain it is.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createWardenServer, type WardenServer } from "agent-warden/server";
import { GENESIS_HASH, hashEntry } from "../src/ledger/chain.js";
import { canonicalJson } from "../src/internal/canonical.js";
import { SqliteControlPlaneStore } from "agent-warden/server";

let server: WardenServer;
let url: string;
const keys: Record<"acme" | "globex", string> = { acme: "", globex: "" };

async function get(org: "acme" | "globex", path: string): Promise<Response> {
  const response = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${keys[org]}` } });
  expect(response.status).toBe(200);
  return response;
}
const verify = async (org: "acme" | "globex") => (await (await get(org, "/v1/ledger/verify")).json()) as Record<string, unknown>;
const exported = async (org: "acme" | "globex") =>
  (await (await get(org, "/v1/ledger/export")).text())
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, any>);

function db() {
  const store = (server.store as SqliteControlPlaneStore).store;
  store.flush();
  return store.db;
}

beforeEach(async () => {
  // Every entry signed: a checkpoint always names the newest head.
  server = createWardenServer({ store: new SqliteControlPlaneStore({ path: ":memory:", checkpointEvery: 1 }), console: false, onError: () => {} });
  keys.acme = (await server.store.createKey({ org: "acme", role: "reviewer", name: "acme" })).key;
  // globex is busier: many more entries than acme.
  keys.globex = (await server.store.createKey({ org: "globex", role: "reviewer", name: "globex" })).key;
  for (let i = 0; i < 20; i++) await server.store.revokeToken("globex", `globex-token-${i}`, { reason: "busy" });
  await server.store.revokeToken("acme", "acme-token", { reason: "one" });
  url = (await server.listen(0)).url;
});

afterEach(async () => {
  await server.close();
});

describe("one chain per organization", () => {
  it("numbers each organization's entries from 1 without gaps, whatever the others wrote", async () => {
    const acme = await exported("acme");
    expect(acme.map((entry) => entry.seq)).toEqual([1, 2]);
    expect((await exported("globex")).map((entry) => entry.seq)).toEqual(Array.from({ length: 21 }, (_, i) => i + 1));
    expect(await verify("acme")).toEqual({ ok: true, entries: 2, checkpoints: expect.any(Number), head: { seq: 2, hash: acme[1]!.hash } });
  });

  it("an export verifies on its own: every hash recomputes and chains from the genesis hash", async () => {
    let prevHash = GENESIS_HASH;
    for (const { hash, data, ...entry } of await exported("acme")) {
      expect(entry.prevHash).toBe(prevHash);
      expect(hashEntry(entry as never, canonicalJson(data))).toBe(hash);
      prevHash = hash;
    }
  });

  it("names the first bad entry of the organization's own chain, and leaves the other's intact", async () => {
    db().prepare("UPDATE org_ledger SET data = ? WHERE org = 'globex' AND seq = 6").run('{"tampered":true}');
    expect(await verify("globex")).toEqual({ ok: false, entries: 5, firstBadSeq: 6, problem: expect.stringMatching(/modified/) });
    expect(await verify("acme")).toMatchObject({ ok: true, entries: 2 });
  });

  it("a deleted entry, or a rewritten tail with its head, is caught", async () => {
    db().prepare("DELETE FROM org_ledger WHERE org = 'globex' AND seq = 4").run();
    expect(await verify("globex")).toMatchObject({ ok: false, firstBadSeq: 4, problem: expect.stringMatching(/missing/) });
    // Cut acme's tail and move its head back: a signed checkpoint still names the old head.
    await server.store.revokeToken("acme", "another", {});
    const signed = db().prepare("SELECT MAX(seq) AS seq FROM org_checkpoints WHERE org = 'acme'").get() as { seq: number };
    db().prepare("DELETE FROM org_ledger WHERE org = 'acme' AND seq = ?").run(signed.seq);
    db().prepare("UPDATE org_ledger_heads SET seq = seq - 1, hash = (SELECT hash FROM org_ledger WHERE org = 'acme' AND seq = ?) WHERE org = 'acme'").run(signed.seq - 1);
    expect(await verify("acme")).toMatchObject({ ok: false, problem: expect.stringMatching(/missing|checkpoint/) });
  });

  it("a rewrite with a stored-bytes twin (duplicate key) is caught", async () => {
    const row = db().prepare("SELECT data FROM org_ledger WHERE org = 'acme' AND seq = 2").get() as { data: string };
    db().prepare("UPDATE org_ledger SET data = ? WHERE org = 'acme' AND seq = 2").run(row.data.replace("{", '{"reason":"forged",'));
    expect(await verify("acme")).toMatchObject({ ok: false, firstBadSeq: 2 });
  });
});
