// GET /v1/ledger/verify is organization-relative: every organization shares one hash chain, but the
// report tells each only of its own entries, and never where another organization's entry broke it.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createWardenServer, type WardenServer } from "agent-warden/server";
import type { SqliteControlPlaneStore } from "../src/server/sqlite-store.js";

let server: WardenServer;
let url: string;
const keys: Record<"acme" | "globex", string> = { acme: "", globex: "" };

async function verify(org: "acme" | "globex"): Promise<Record<string, unknown>> {
  const response = await fetch(`${url}/v1/ledger/verify`, { headers: { authorization: `Bearer ${keys[org]}` } });
  expect(response.status).toBe(200);
  return (await response.json()) as Record<string, unknown>;
}

function db() {
  const store = (server.store as SqliteControlPlaneStore).store;
  store.flush();
  return store.db;
}

/** Sequence numbers of one organization's entries. */
function seqsOf(org: string): number[] {
  return (db().prepare("SELECT seq FROM ledger WHERE org = ? ORDER BY seq").all(org) as Array<{ seq: number }>).map((row) => row.seq);
}

beforeEach(async () => {
  server = createWardenServer({ db: ":memory:", console: false, onError: () => {} });
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

describe("the ledger report is organization-relative", () => {
  it("counts this organization's entries only, and says nothing of the whole chain's size", async () => {
    const report = await verify("acme");
    const acme = seqsOf("acme");
    expect(report).toEqual({ ok: true, entries: acme.length, checkpoints: expect.any(Number), head: { seq: acme.at(-1), hash: expect.any(String) } });
    expect(report).not.toHaveProperty("chainEntries");
    expect((await verify("globex")).entries).toBe(seqsOf("globex").length);
  });

  it("names the first bad entry to its own organization, and not to another", async () => {
    const target = seqsOf("globex")[5]!;
    db().prepare("UPDATE ledger SET data = ? WHERE seq = ?").run('{"tampered":true}', target);
    expect(await verify("globex")).toEqual({ ok: false, entries: seqsOf("globex").length, firstBadSeq: target, problem: expect.stringMatching(/modified/) });
    const acme = await verify("acme");
    expect(acme).toEqual({ ok: false, entries: seqsOf("acme").length, problem: "the shared ledger failed verification at an entry of another organization" });
    expect(JSON.stringify(acme)).not.toContain(String(target));
  });

  it("does not place a missing entry for anyone", async () => {
    const target = seqsOf("globex")[3]!;
    db().prepare("DELETE FROM ledger WHERE seq = ?").run(target);
    for (const org of ["acme", "globex"] as const) {
      const report = await verify(org);
      expect(report).toMatchObject({ ok: false, problem: "the shared ledger failed verification at an entry that is missing" });
      expect(report).not.toHaveProperty("firstBadSeq");
    }
  });
});
