// The control plane's own checkpoints, witnessed: each organization's tree heads go to an outside witness
// (`warden witness`, over loopback HTTP), its cosignatures come back onto the stored checkpoints and into
// evidence bundles; a witness that is down leaves the head reported as not witnessed (writes go on); and an
// organization's history rewritten and re-signed with the server's own key fails against the witness.
// On both server stores: SQLite, and PostgreSQL in a throwaway cluster.
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fetchWitnessedCheckpoint, verifyEvidence, type EvidenceBundle } from "agent-warden";
import { createWardenServer, PostgresControlPlaneStore, SqliteControlPlaneStore, type ControlPlaneStore, type LedgerReport, type WardenServer } from "agent-warden/server";
import { startWitness, type RunningWitness } from "agent-warden/witness";
import { describeVerification } from "../src/cli/evidence.js";
import { hashEntry } from "../src/ledger/chain.js";
import { ledgerVerifierKey } from "../src/ledger/evidence.js";
import { orgLedgerOrigin } from "../src/ledger/note.js";
import { toPostgres } from "../src/server/sql.js";
import { EVENTS } from "./fixtures/make-wire-contract.js";
import { POSTGRES_SKIP, startPostgres, type PostgresCluster } from "./fixtures/postgres.js";

type Exec = { all(sql: string, ...params: unknown[]): Promise<Array<Record<string, unknown>>>; run(sql: string, ...params: unknown[]): Promise<void>; close(): Promise<void> };

interface Backend {
  name: string;
  skip: string | undefined;
  setup(): Promise<void>;
  store(pem: string): ControlPlaneStore;
  /** Direct access to the database, as someone who can write it has. */
  exec(): Promise<Exec>;
  teardown(): void;
}

const dir = mkdtempSync(join(tmpdir(), "warden-server-witness-"));
let cluster: PostgresCluster | undefined;
let pgUrl = "";

const backends: Backend[] = [
  {
    name: "SQLite",
    skip: undefined,
    async setup() {},
    store: (pem) => new SqliteControlPlaneStore({ path: join(dir, "server.db"), ledgerSigningKey: pem, checkpointEvery: 1000 }),
    async exec() {
      const db = new DatabaseSync(join(dir, "server.db"));
      return {
        all: async (sql, ...params) => db.prepare(sql).all(...(params as never[])) as Array<Record<string, unknown>>,
        run: async (sql, ...params) => void db.prepare(sql).run(...(params as never[])),
        close: async () => db.close(),
      };
    },
    teardown() {},
  },
  {
    name: "PostgreSQL",
    skip: POSTGRES_SKIP,
    async setup() {
      cluster = await startPostgres();
      pgUrl = cluster.createDatabase("warden_witness");
    },
    store: (pem) => new PostgresControlPlaneStore({ url: pgUrl, ledgerSigningKey: pem, checkpointEvery: 1000 }),
    async exec() {
      const pg = (await import("pg")).default;
      const client = new pg.Client({ connectionString: pgUrl });
      await client.connect();
      return {
        all: async (sql, ...params) => (await client.query(toPostgres(sql), params)).rows as Array<Record<string, unknown>>,
        run: async (sql, ...params) => void (await client.query(toPostgres(sql), params)),
        close: () => client.end(),
      };
    },
    teardown: () => cluster?.stop(),
  },
];

afterAll(() => rmSync(dir, { recursive: true, force: true }));

for (const backend of backends) describe.skipIf(backend.skip !== undefined)(`the control plane's checkpoints witnessed, on ${backend.name}${backend.skip ? ` (skipped: ${backend.skip})` : ""}`, () => {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const pem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  const origin = orgLedgerOrigin(publicKey, "acme");
  const errors: unknown[] = [];
  let witness: RunningWitness;
  let witnessPort = 0;
  let server: WardenServer;
  let url = "";
  const keys = { admin: "", agent: "" };
  const witnessState = join(dir, `witness-${backend.name}.db`);
  const witnessKeyFile = join(dir, `witness-${backend.name}.pem`);

  const api = async (key: string, method: string, path: string, body?: unknown) =>
    fetch(url + path, { method, headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, ...(body !== undefined && { body: JSON.stringify(body) }) });
  const startServer = async () => {
    server = createWardenServer({ store: backend.store(pem), console: false, witnesses: [{ url: witness.url, key: witness.witness.verifierKey() }], witnessInterval: 3_600_000, onError: (error) => errors.push(error) });
    url = (await server.listen(0)).url;
  };
  const startOurWitness = async () => {
    witness = await startWitness({ name: "witness.test/w1", keyFile: witnessKeyFile, state: witnessState, logs: [ledgerVerifierKey(publicKey)], port: witnessPort });
    witnessPort = Number(new URL(witness.url).port);
  };
  const ingest = async (suffix: string) => {
    const events = EVENTS.slice(0, 4).map((event) => ({ ...event, id: `${event.id}${suffix}`, runId: `run_${suffix}`, stepId: event.stepId && `${event.stepId}${suffix}`, toolCallId: event.toolCallId && `tc_${suffix}` }));
    const response = await api(keys.agent, "POST", "/v1/events", { events });
    expect(response.status).toBe(200);
  };

  beforeAll(async () => {
    await backend.setup();
    await startOurWitness();
    await startServer();
    keys.admin = (await server.store.createKey({ org: "acme", role: "admin" })).key;
    keys.agent = (await server.store.createKey({ org: "acme", role: "agent", agentId: "agent-1" })).key;
  }, 120_000);
  afterAll(async () => {
    await server?.close();
    await witness?.close();
    backend.teardown();
  });

  it("cosigned heads are kept, reported by verify and carried in evidence; a witness that is down leaves the head not witnessed, writes going on", async () => {
    expect((await api(keys.admin, "PUT", "/v1/policies", { policies: { version: 1, default: "allow", policies: [] } })).status).toBe(201);
    await ingest("one");
    const first = await server.witness();
    expect(first.acme).toEqual([expect.objectContaining({ witness: "witness.test/w1", status: "cosigned" })]);
    const size = first.acme![0]!.size;
    expect(size).toBeGreaterThan(4);

    const report = (await (await api(keys.admin, "GET", "/v1/ledger/verify")).json()) as LedgerReport;
    expect(report).toMatchObject({ ok: true, entries: size, witnessed: { upTo: size, head: true }, witnesses: [{ witness: "witness.test/w1", holds: true, newest: size }] });
    const bundle = (await (await api(keys.admin, "GET", "/v1/evidence/tc_one")).json()) as EvidenceBundle;
    expect(bundle.warnings).toBeUndefined();
    const checked = await verifyEvidence(bundle, { publicKey, witnesses: [witness.witness.verifierKey()] });
    expect(checked).toMatchObject({ ok: true, checkpoint: { size, witnessed: [{ witness: "witness.test/w1" }] } });
    // The witness holds the very head the server keeps.
    expect((await fetchWitnessedCheckpoint(witness.url, origin)).checkpoint?.split("\n").slice(0, 3)).toEqual(bundle.checkpoint.split("\n").slice(0, 3));

    // The witness goes away: the writes carry on, the round says so, verify and evidence say the head is not witnessed.
    await witness.close();
    await ingest("two");
    const down = await server.witness();
    expect(down.acme).toEqual([expect.objectContaining({ status: "unreachable" })]);
    expect(errors.some((error) => /witness witness\.test\/w1 .* did not answer/.test(String((error as Error).message)))).toBe(true);
    const unwitnessed = (await (await api(keys.admin, "GET", "/v1/ledger/verify")).json()) as LedgerReport;
    expect(unwitnessed).toMatchObject({ ok: true, witnessed: { upTo: size, head: false } });
    // As `warden ledger verify --url` prints it.
    expect(describeVerification(unwitnessed)).toContain(`Witnessed up to entry ${size}: the head (entry ${unwitnessed.entries}) is not witnessed yet.`);
    const later = (await (await api(keys.admin, "GET", "/v1/evidence/tc_two")).json()) as EvidenceBundle;
    expect(later.warnings).toEqual([expect.stringMatching(/not cosigned by witness witness\.test\/w1/)]);
    expect((await verifyEvidence(later, { publicKey })).ok).toBe(true);
    expect(await verifyEvidence(later, { publicKey, witnesses: [witness.witness.verifierKey()] })).toMatchObject({ ok: false, problem: expect.stringMatching(/not cosigned by witness/) });

    // Back (same key, same state): the next round proves from the head it holds, and the head is witnessed again.
    await startOurWitness();
    const back = await server.witness();
    expect(back.acme).toEqual([expect.objectContaining({ status: "cosigned" })]);
    expect(back.acme![0]!.size).toBeGreaterThan(size);
    expect(((await (await api(keys.admin, "GET", "/v1/ledger/verify")).json()) as LedgerReport)).toMatchObject({ ok: true, witnessed: { head: true } });
  }, 60_000);

  it("an organization's history rewritten and re-signed with the server's own key fails against the witness's cosignature", async () => {
    await server.close();
    // Whoever holds the database and the key: one entry's content changed, the chain re-hashed from there, the old checkpoints gone.
    const db = await backend.exec();
    try {
      const rows = await db.all("SELECT * FROM org_ledger WHERE org = ? ORDER BY seq", "acme");
      let prevHash = String(rows[0]!.prev_hash);
      for (const row of rows) {
        const seq = Number(row.seq);
        const data = seq === 2 ? String(row.data).replace('"role":"agent"', '"role":"admin"') : String(row.data);
        if (seq === 2) expect(data).not.toBe(row.data);
        const entry = { seq, id: String(row.id), ts: Number(row.ts), type: String(row.type), org: "acme", agentId: row.agent_id as string | null, runId: row.run_id as string | null, stepId: row.step_id as string | null, toolCallId: row.tool_call_id as string | null, actor: row.actor as string | null, prevHash };
        const hash = hashEntry(entry, data);
        await db.run("UPDATE org_ledger SET data = ?, prev_hash = ?, hash = ? WHERE org = ? AND seq = ?", data, prevHash, hash, "acme", seq);
        prevHash = hash;
      }
      await db.run("UPDATE org_ledger_heads SET hash = ?, checkpoint_seq = 0, checkpoint_ts = 0 WHERE org = ?", prevHash, "acme");
      await db.run("DELETE FROM org_checkpoints WHERE org = ?", "acme");
    } finally {
      await db.close();
    }
    errors.length = 0;
    await startServer();
    // On its own the rewritten chain verifies (it was re-signed with the key)...
    const alone = await server.store.verifyLedger("acme");
    expect(alone.ok).toBe(true);
    // ...but the witness refuses its next head, and its cosigned head no longer matches.
    const round = await server.witness();
    expect(round.acme).toEqual([expect.objectContaining({ status: "refused", problem: expect.stringMatching(/rewritten/) })]);
    expect(errors.some((error) => (error as { code?: string }).code === "ledger_integrity")).toBe(true);
    const held = await fetchWitnessedCheckpoint(witness.url, origin);
    const judged = await server.store.verifyLedger("acme", { witnesses: [{ key: held.key, checkpoint: held.checkpoint }] });
    expect(judged).toMatchObject({ ok: false, problem: expect.stringMatching(/witness witness\.test\/w1 cosigned a different tree of \d+ entries/), witnesses: [{ failure: "rewritten" }] });
    // Over HTTP the server finds no head its witness cosigned: the head is not witnessed.
    expect(((await (await api(keys.admin, "GET", "/v1/ledger/verify")).json()) as LedgerReport)).toMatchObject({ ok: true, witnessed: { upTo: 0, head: false }, witnesses: [{ holds: false, failure: "unwitnessed" }] });
  }, 60_000);
});

describe("warden serve --witness", () => {
  it("takes a witness by URL (printing the key it gave, to pin) and refuses a value that is not a witness key", async () => {
    const { spawn } = await import("node:child_process");
    const { childEnv, REPO, runCli } = await import("./fixtures/proc.js");
    const { publicKey } = generateKeyPairSync("ed25519");
    const running = await startWitness({ name: "witness.test/cli", logs: [ledgerVerifierKey(publicKey)] });
    try {
      const db = join(dir, "cli.db");
      const bad = await runCli(join(dir, "unused.db"), ["serve", "--port", "0", "--db", db, "--witness", `${running.url}=not-a-key`], { timeoutMs: 30_000 });
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/not a witness verifier key/);
      const child = spawn(process.execPath, ["--import", "tsx", join(REPO, "src/cli/bin.ts"), "--org", "acme", "serve", "--port", "0", "--db", db, "--witness", running.url], { cwd: REPO, env: childEnv(), stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`warden serve did not start: ${out}`)), 30_000);
        child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
          out += chunk;
          if (/control plane on http/.test(out)) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      await new Promise((done) => {
        child.on("close", done);
        child.kill("SIGTERM");
      });
      expect(out).toContain(`witness ${running.url} gave its key (pin it: --witness ${running.url}=${running.witness.verifierKey()})`);
    } finally {
      await running.close();
    }
  }, 90_000);
});
