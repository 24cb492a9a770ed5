// Server schema 4 as a migration, from a database of schema 3 on both stores: the organizations'
// checkpoints gain their tree-head notes and frontiers (older checkpoints stay, without them), and
// `agent_log_heads` (created on first use in schema 3) becomes part of the schema, keeping the heads an
// older server countersigned.
import { createHash, generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterAll, describe, expect, it } from "vitest";
import { verifyEvidence } from "agent-warden";
import type { WardenEvent } from "agent-warden";
import { PostgresControlPlaneStore, SqliteControlPlaneStore, type ControlPlaneStore } from "agent-warden/server";
import { MerkleTree } from "../src/ledger/merkle.js";
import { checkpointText, ledgerOrigin, signNote, verifierKey } from "../src/ledger/note.js";
import { submissionBody } from "../src/ledger/witness.js";
import { SERVER_SCHEMA_VERSION } from "../src/server/schema.js";
import { EVENTS } from "./fixtures/make-wire-contract.js";
import { POSTGRES_SKIP, startPostgres } from "./fixtures/postgres.js";

const dir = mkdtempSync(join(tmpdir(), "warden-schema-upgrade-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// An agent's local ledger whose checkpoints the control plane countersigns.
const agent = generateKeyPairSync("ed25519");
const agentOrigin = ledgerOrigin(agent.publicKey);
const agentLogKey = verifierKey(agentOrigin, agent.publicKey);
const agentTree = new MerkleTree(Array.from({ length: 6 }, (_, i) => createHash("sha256").update(`entry ${i}`).digest()));
const agentCheckpoint = (size: number) => signNote(checkpointText({ origin: agentOrigin, size, root: agentTree.root(size) }), agentOrigin, agent.privateKey);

/** What a schema 3 server leaves: entries, signed checkpoints without tree heads, and one countersigned agent head. */
async function fillAsSchema3(store: ControlPlaneStore): Promise<void> {
  await store.createKey({ org: "acme", role: "admin" });
  const ingested = await store.ingest({ org: "acme", role: "agent", keyId: "key_test", name: undefined, agentId: "agent-1" }, EVENTS.slice(0, 4).map((event) => ({ ...event, org: "acme" })) as never);
  expect(ingested.rejected).toEqual([]);
  await store.checkpointLedger!("acme");
  expect(await store.countersign("acme", "agent-1", agentLogKey, submissionBody({ oldSize: 0, proof: [], checkpoint: agentCheckpoint(3) }))).toMatchObject({ status: 200 });
}

/** After the upgrade: the countersigned head was kept, old checkpoints verify, new ones carry tree heads, evidence verifies. */
async function checkUpgraded(store: ControlPlaneStore, publicKeyPem: string): Promise<void> {
  expect(await store.countersigned("acme", agentOrigin)).toMatch(/\n3\n/);
  // The head kept is the one the next submission must extend: from size 0 it is refused with the size held.
  expect(await store.countersign("acme", "agent-1", agentLogKey, submissionBody({ oldSize: 0, proof: [], checkpoint: agentCheckpoint(6) }))).toMatchObject({ status: 409, size: 3 });
  expect(await store.countersign("acme", "agent-1", agentLogKey, submissionBody({ oldSize: 3, proof: agentTree.consistencyProof(3, 6), checkpoint: agentCheckpoint(6) }))).toMatchObject({ status: 200 });
  await store.createKey({ org: "acme", role: "reviewer" });
  await store.checkpointLedger!("acme");
  const report = await store.verifyLedger("acme");
  if (!report.ok) throw new Error(report.problem);
  // The checkpoints signed before the upgrade stay as they were (no tree head); the new one has its note.
  const log = store.orgWitnessedLog!("acme");
  const notes: number[] = [];
  for await (const { size } of log.notes()) notes.push(size);
  expect(notes).toEqual([report.entries]);
  expect(report.checkpoints).toBeGreaterThan(1);
  expect((await log.newest())?.note).toMatch(/\/org\/acme\n/);
  const bundle = await store.evidence("acme", EVENTS[2]!.toolCallId!);
  expect(await verifyEvidence(bundle, { publicKey: publicKeyPem })).toMatchObject({ ok: true });
}

describe("server schema 4 from schema 3", () => {
  it(`on SQLite: the version goes to ${SERVER_SCHEMA_VERSION}, columns and table added, data kept`, async () => {
    const { publicKey, privateKey } = generateKeyPairSync("ed25519");
    const pem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    const path = join(dir, "server.db");
    const first = new SqliteControlPlaneStore({ path, ledgerSigningKey: pem });
    await fillAsSchema3(first);
    await first.close();
    // Back to schema 3: org checkpoints without the note and frontier columns, agent_log_heads as first use made it.
    const db = new DatabaseSync(path);
    db.exec("ALTER TABLE org_checkpoints DROP COLUMN note; ALTER TABLE org_checkpoints DROP COLUMN frontier; UPDATE meta SET value = '3' WHERE key = 'server_schema'");
    db.exec("CREATE TABLE agent_log_heads_v3 AS SELECT * FROM agent_log_heads; DROP TABLE agent_log_heads; CREATE TABLE agent_log_heads (org TEXT NOT NULL, origin TEXT NOT NULL, agent_id TEXT, size BIGINT NOT NULL, root TEXT NOT NULL, note TEXT NOT NULL, ts BIGINT NOT NULL, PRIMARY KEY (org, origin)); INSERT INTO agent_log_heads SELECT * FROM agent_log_heads_v3; DROP TABLE agent_log_heads_v3");
    db.close();

    const upgraded = new SqliteControlPlaneStore({ path, ledgerSigningKey: pem });
    try {
      const check = new DatabaseSync(path, { readOnly: true });
      expect((check.prepare("SELECT value FROM meta WHERE key = 'server_schema'").get() as { value: string }).value).toBe(String(SERVER_SCHEMA_VERSION));
      expect((check.prepare("PRAGMA table_info(org_checkpoints)").all() as Array<{ name: string }>).map((c) => c.name)).toEqual(expect.arrayContaining(["note", "frontier"]));
      check.close();
      await checkUpgraded(upgraded, publicKey.export({ type: "spki", format: "pem" }).toString());
    } finally {
      await upgraded.close();
    }

    // A schema 3 database that never countersigned has no agent_log_heads: the migration creates it.
    const path2 = join(dir, "server2.db");
    const fresh = new SqliteControlPlaneStore({ path: path2, ledgerSigningKey: pem });
    await fresh.close();
    const db2 = new DatabaseSync(path2);
    db2.exec("DROP TABLE agent_log_heads; ALTER TABLE org_checkpoints DROP COLUMN note; ALTER TABLE org_checkpoints DROP COLUMN frontier; UPDATE meta SET value = '3' WHERE key = 'server_schema'");
    db2.close();
    const again = new SqliteControlPlaneStore({ path: path2, ledgerSigningKey: pem });
    try {
      expect(await again.countersign("acme", "agent-1", agentLogKey, submissionBody({ oldSize: 0, proof: [], checkpoint: agentCheckpoint(2) }))).toMatchObject({ status: 200 });
    } finally {
      await again.close();
    }
  });

  it("on SQLite, schema 5: the ingested ids move to a table without rowid, and a resent event is still a duplicate", async () => {
    const path = join(dir, "server5.db");
    const first = new SqliteControlPlaneStore({ path });
    const principal = { keyId: "key_a", org: "acme", role: "agent" as const, name: "agent-1", agentId: "agent-1" };
    const sent = [{ id: "evt_v4", type: "run.started", ts: 1_760_000_000_000, agentId: "agent-1", runId: "run_v4", stepId: null, toolCallId: null, actor: null, data: {} }] as WardenEvent[];
    expect((await first.ingest(principal, sent)).accepted).toBe(1);
    await first.close();
    // Back to schema 4: the table as it was made then, with a rowid.
    const db = new DatabaseSync(path);
    db.exec("CREATE TABLE ingested_events_v4 (org TEXT NOT NULL, id TEXT NOT NULL, received_at INTEGER NOT NULL, PRIMARY KEY (org, id)); INSERT INTO ingested_events_v4 SELECT * FROM ingested_events; DROP TABLE ingested_events; ALTER TABLE ingested_events_v4 RENAME TO ingested_events; UPDATE meta SET value = '4' WHERE key = 'server_schema'");
    db.close();
    const upgraded = new SqliteControlPlaneStore({ path });
    try {
      const check = new DatabaseSync(path, { readOnly: true });
      expect((check.prepare("SELECT sql FROM sqlite_master WHERE name = 'ingested_events'").get() as { sql: string }).sql).toMatch(/WITHOUT ROWID/);
      expect((check.prepare("SELECT value FROM meta WHERE key = 'server_schema'").get() as { value: string }).value).toBe(String(SERVER_SCHEMA_VERSION));
      check.close();
      expect(await upgraded.ingest(principal, sent)).toMatchObject({ accepted: 0, duplicates: 1 });
    } finally {
      await upgraded.close();
    }
  });

  it.skipIf(POSTGRES_SKIP !== undefined)(`on PostgreSQL: the newest migration runs once, columns and table added, data kept${POSTGRES_SKIP ? ` (skipped: ${POSTGRES_SKIP})` : ""}`, async () => {
    const cluster = await startPostgres();
    try {
      const url = cluster.createDatabase("warden_upgrade");
      const { publicKey, privateKey } = generateKeyPairSync("ed25519");
      const pem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
      const first = new PostgresControlPlaneStore({ url, ledgerSigningKey: pem });
      await first.ready();
      await fillAsSchema3(first);
      await first.close();
      const pg = (await import("pg")).default;
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      const newest = Number((await client.query("SELECT max(version) AS v FROM warden_migrations")).rows[0].v);
      // Back to the schema before: the last migration undone (agent_log_heads stays, as first use made it).
      await client.query(`DELETE FROM warden_migrations WHERE version = ${newest}; ALTER TABLE org_checkpoints DROP COLUMN note, DROP COLUMN frontier`);
      const upgraded = new PostgresControlPlaneStore({ url, ledgerSigningKey: pem });
      try {
        await upgraded.ready();
        expect(Number((await client.query("SELECT max(version) AS v FROM warden_migrations")).rows[0].v)).toBe(newest);
        const columns = (await client.query("SELECT column_name FROM information_schema.columns WHERE table_name = 'org_checkpoints'")).rows.map((r: { column_name: string }) => r.column_name);
        expect(columns).toEqual(expect.arrayContaining(["note", "frontier"]));
        await checkUpgraded(upgraded, publicKey.export({ type: "spki", format: "pem" }).toString());
      } finally {
        await upgraded.close();
        await client.end();
      }
    } finally {
      cluster.stop();
    }
  }, 120_000);
});
