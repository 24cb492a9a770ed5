// Every single-entry mutation of a witnessed ledger, made by the strongest insider (writes the store,
// re-hashes the chain, re-signs every checkpoint with the stolen key): each field of each entry,
// deletion, insertion, reordering, truncation behind the witnessed head. Each must be caught by
// verification against the witness's head, by the witness when asked to cosign the forged log, and by
// a bundle verifier that requires the witness's cosignature. The counts tried / detected are printed.
import { createPrivateKey, createPublicKey, sign } from "node:crypto";
import { copyFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterAll, describe, expect, it } from "vitest";
import { openLedger, verifyEvidence, Warden } from "agent-warden";
import { Witness } from "agent-warden/witness";
import { canonicalJson } from "../src/internal/canonical.js";
import { checkpointMessage, hashEntry } from "../src/ledger/chain.js";
import { keyIdOf } from "../src/ledger/keys.js";
import { MerkleTree } from "../src/ledger/merkle.js";
import { checkpointText, ledgerOrigin, signNote } from "../src/ledger/note.js";
import { tempDir } from "./fixtures/proc.js";

const temp = tempDir("warden-witness-property-");
afterAll(() => temp.cleanup());

type Row = { seq: number; id: string; ts: number; type: string; org: string; agent_id: string | null; run_id: string | null; step_id: string | null; tool_call_id: string | null; actor: string | null; data: string };
const FIELDS = ["id", "ts", "type", "org", "agent_id", "run_id", "step_id", "tool_call_id", "actor", "data"] as const;

/** Renumbers the rows 1..n, re-hashes the chain and re-signs every remaining checkpoint with `keyFile`'s key. */
function resign(db: DatabaseSync, keyFile: string): void {
  const key = createPrivateKey(readFileSync(keyFile, "utf8"));
  const origin = ledgerOrigin(createPublicKey(key));
  const rows = db.prepare("SELECT * FROM ledger ORDER BY seq").all() as Row[];
  db.exec("DELETE FROM ledger");
  let prevHash = "0".repeat(64);
  const hashes: string[] = [];
  const insert = db.prepare("INSERT INTO ledger (seq, id, ts, type, org, agent_id, run_id, step_id, tool_call_id, actor, data, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)");
  rows.forEach((row, index) => {
    const seq = index + 1;
    const hash = hashEntry({ seq, id: row.id, ts: row.ts, type: row.type, org: row.org, agentId: row.agent_id, runId: row.run_id, stepId: row.step_id, toolCallId: row.tool_call_id, actor: row.actor, prevHash }, row.data);
    insert.run(seq, row.id, row.ts, row.type, row.org, row.agent_id, row.run_id, row.step_id, row.tool_call_id, row.actor, row.data, Buffer.from(hash, "hex"));
    hashes.push(hash);
    prevHash = hash;
  });
  db.prepare("DELETE FROM checkpoints WHERE seq > ?").run(rows.length);
  const tree = new MerkleTree(hashes.map((h) => Buffer.from(h, "hex")));
  for (const { seq } of db.prepare("SELECT seq FROM checkpoints").all() as Array<{ seq: number }>) {
    const hash = hashes[seq - 1]!;
    const note = signNote(checkpointText({ origin, size: seq, root: tree.root(seq) }), origin, key);
    db.prepare("UPDATE checkpoints SET hash = ?, signature = ?, note = ? WHERE seq = ?").run(hash, sign(null, checkpointMessage(seq, hash), key).toString("base64url"), note, seq);
  }
  // The newest head re-signed too, so the forged log has a checkpoint to present at its full size.
  if (rows.length > 0 && !db.prepare("SELECT 1 FROM checkpoints WHERE seq = ?").get(rows.length)) {
    const hash = hashes.at(-1)!;
    db.prepare("INSERT INTO checkpoints (seq, hash, ts, key_id, signature, note) VALUES (?,?,?,?,?,?)").run(rows.length, hash, Date.now(), keyIdOf(createPublicKey(key)), sign(null, checkpointMessage(rows.length, hash), key).toString("base64url"), signNote(checkpointText({ origin, size: rows.length, root: tree.root() }), origin, key));
  }
}

const changed = (field: (typeof FIELDS)[number], row: Row): string | number => {
  if (field === "ts") return row.ts + 1;
  if (field === "data") return canonicalJson({ ...(JSON.parse(row.data) as object), mutated: true });
  return `${row[field] ?? ""}x`;
};

describe("property: every single-entry mutation of a witnessed ledger is detected", () => {
  it("by verification against the witness's head, by the witness, and by a bundle verifier requiring its cosignature", async () => {
    const dir = join(temp.dir, "pristine");
    const file = join(dir, "warden.db");
    const keyFile = join(dir, "keys", "ledger.pem");
    const warden = new Warden({
      agentId: "billing-agent",
      store: file,
      ledger: { checkpointEvery: 4 },
      policies: { version: 1, default: "allow", policies: [{ id: "refunds", when: { tool: "payments.*" }, action: "require_approval" }] },
      onApprovalRequest: (_request, decide) => decide.approve({ reviewer: "alice", reason: "ok" }),
    });
    let toolCallId = "";
    for (const order of [1, 2]) {
      await warden.run({ task: `refund ${order}` }, async (run) => {
        await run.tool("read_order", { order }, () => ({ order }));
        await run.tool("payments.refund", { order, amount: 100 }, (ctx) => ((toolCallId = ctx.toolCallId), "refunded"));
      });
    }
    warden.close();
    // The witness cosigns the honest log at its full size.
    const witness = new Witness({ name: "witness.test/property", logs: [warden.ledger.verifierKey()] });
    const witnessKey = witness.verifierKey();
    const pristine = new DatabaseSync(file, { readOnly: true });
    const size = (pristine.prepare("SELECT MAX(seq) AS n FROM ledger").get() as { n: number }).n;
    const honestNote = (pristine.prepare("SELECT note FROM checkpoints WHERE seq = ?").get(size) as { note: string }).note;
    pristine.close();
    const cosigned = witness.addCheckpoint({ oldSize: 0, proof: [], checkpoint: honestNote });
    expect(cosigned.status).toBe(200);
    const head = { key: witnessKey, checkpoint: witness.latest(ledgerOrigin(createPublicKey(createPrivateKey(readFileSync(keyFile, "utf8")))))! };

    const mutations: Array<{ name: string; apply: (db: DatabaseSync) => void }> = [];
    for (let seq = 1; seq <= size; seq++) {
      for (const field of FIELDS) mutations.push({ name: `entry ${seq}: ${field} changed`, apply: (db) => {
        const row = db.prepare("SELECT * FROM ledger WHERE seq = ?").get(seq) as Row;
        db.prepare(`UPDATE ledger SET ${field} = ? WHERE seq = ?`).run(changed(field, row), seq);
      } });
      mutations.push({ name: `entry ${seq} deleted`, apply: (db) => db.prepare("DELETE FROM ledger WHERE seq = ?").run(seq) });
      // (An entry after the last one is an append: the history the witness saw stays as it was.)
      if (seq < size) mutations.push({ name: `entry inserted after ${seq}`, apply: (db) => {
        const row = db.prepare("SELECT * FROM ledger WHERE seq = ?").get(seq) as Row;
        // Spread the seqs out (through negatives, so no two rows collide), then put the copy in a gap.
        db.prepare("UPDATE ledger SET seq = -seq * 2").run();
        db.prepare("UPDATE ledger SET seq = -seq").run();
        db.prepare("INSERT INTO ledger (seq, id, ts, type, org, agent_id, run_id, step_id, tool_call_id, actor, data, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)").run(seq * 2 + 1, `${row.id}_forged`, row.ts, row.type, row.org, row.agent_id, row.run_id, row.step_id, row.tool_call_id, row.actor, row.data, Buffer.alloc(32));
      } });
      if (seq < size) mutations.push({ name: `entries ${seq} and ${seq + 1} swapped`, apply: (db) => {
        db.prepare("UPDATE ledger SET seq = -1 WHERE seq = ?").run(seq);
        db.prepare("UPDATE ledger SET seq = ? WHERE seq = ?").run(seq, seq + 1);
        db.prepare("UPDATE ledger SET seq = ? WHERE seq = -1").run(seq + 1);
      } });
      mutations.push({ name: `truncated from entry ${seq}`, apply: (db) => db.prepare("DELETE FROM ledger WHERE seq >= ?").run(seq) });
    }

    const tried = { verify: 0, witness: 0, bundle: 0 };
    const detected = { verify: 0, witness: 0, bundle: 0 };
    const missed: string[] = [];
    let n = 0;
    for (const mutation of mutations) {
      const copy = join(temp.dir, `m${n++}.db`);
      copyFileSync(file, copy);
      const db = new DatabaseSync(copy);
      try {
        // One transaction per forgery: a commit (and its fsync) per rewritten row is most of the wall time.
        db.exec("BEGIN");
        mutation.apply(db);
        resign(db, keyFile);
        db.exec("COMMIT");
      } finally {
        db.close();
      }
      const { ledger, close } = openLedger(copy, { publicKey: keyFile, checkpointEvery: 4 });
      try {
        tried.verify++;
        if (!ledger.verify({ witnesses: [head] }).ok) detected.verify++;
        else missed.push(`verify: ${mutation.name}`);
        // The forged log asks the witness to cosign its newest checkpoint, proving from the witnessed size.
        const forged = ledger.entries().length;
        const db2 = new DatabaseSync(copy, { readOnly: true });
        const note = (db2.prepare("SELECT note FROM checkpoints ORDER BY seq DESC LIMIT 1").get() as { note: string } | undefined)?.note;
        const hashes = (db2.prepare("SELECT hash FROM ledger ORDER BY seq").all() as Array<{ hash: Uint8Array }>).map((r) => r.hash);
        db2.close();
        tried.witness++;
        const proof = forged > size ? new MerkleTree(hashes).consistencyProof(size, forged) : [];
        const answer = note === undefined ? { status: 400 } : witness.addCheckpoint({ oldSize: size, proof, checkpoint: note });
        if (answer.status !== 200) detected.witness++;
        else missed.push(`witness: ${mutation.name}`);
        // A bundle of the refund's tool call from the forged log, required to carry the witness's cosignature.
        const entry = ledger.entries().find((e) => e.toolCallId === toolCallId);
        if (entry !== undefined) {
          tried.bundle++;
          let ok = false;
          try {
            ok = (await verifyEvidence(JSON.parse(JSON.stringify(ledger.evidence(toolCallId))), { publicKey: keyFile, witnesses: [witnessKey] })).ok;
          } catch {
            ok = false;
          }
          if (!ok) detected.bundle++;
          else missed.push(`bundle: ${mutation.name}`);
        }
      } finally {
        close();
      }
    }
    console.log(`mutations of a ${size}-entry witnessed ledger, re-signed with the stolen key — verify: ${detected.verify}/${tried.verify} detected; witness: ${detected.witness}/${tried.witness} refused; bundle verifier: ${detected.bundle}/${tried.bundle} refused`);
    expect(missed).toEqual([]);
    expect(tried.verify).toBe(mutations.length);
    expect(tried.verify).toBe(size * (FIELDS.length + 2) + (size - 1) * 2);
    witness.close();
  }, 180_000);
});
