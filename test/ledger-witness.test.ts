// Witnesses: the C2SP tlog-witness protocol against a real HTTP witness, ledgers whose checkpoints it
// cosigns, and the attacks it exists for: an insider who rewrites the SQLite file and re-signs it with
// the stolen key, a history cut short, a rollback to an older head, a checkpoint signed by another key.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from "node:crypto";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { DatabaseSync } from "node:sqlite";
import { afterAll, describe, expect, it } from "vitest";
import { fetchWitnessedCheckpoint, LedgerIntegrityError, openLedger, verifyEvidence, Warden, type EvidenceBundle } from "agent-warden";
import { startWitness, submissionBody, type RunningWitness } from "agent-warden/witness";
import { checkpointMessage, hashEntry } from "../src/ledger/chain.js";
import { MerkleFrontier, MerkleTree } from "../src/ledger/merkle.js";
import { checkpointText, ledgerOrigin, signNote, verifierKey } from "../src/ledger/note.js";
import { childEnv, REPO, runCli, tempDir } from "./fixtures/proc.js";
import { setHash } from "./fixtures/ledger-rows.js";

const temp = tempDir("warden-witness-");
const witnesses: RunningWitness[] = [];
afterAll(async () => {
  for (const w of witnesses) await w.close();
  temp.cleanup();
});

const sha = (...parts: Buffer[]) => createHash("sha256").update(Buffer.concat(parts)).digest();
const rawKey = (key: KeyObject) => (key.type === "public" ? key : createPublicKey(key)).export({ format: "der", type: "spki" }).subarray(12);

/** A cosignature line checked the way c2sp.org/tlog-cosignature describes it, independently of the code under test. */
function specCosignatureHolds(line: string, text: string, name: string, publicKey: KeyObject): boolean {
  const match = /^— (\S+) (\S+)\n?$/u.exec(line);
  if (!match || match[1] !== name) return false;
  const bytes = Buffer.from(match[2]!, "base64");
  if (bytes.length !== 4 + 8 + 64) return false;
  if (!bytes.subarray(0, 4).equals(sha(Buffer.from(`${name}\n`), Buffer.of(4), rawKey(publicKey)).subarray(0, 4))) return false;
  const time = bytes.readBigUInt64BE(4);
  return verify(null, Buffer.from(`cosignature/v1\ntime ${time}\n${text}`), publicKey, bytes.subarray(12));
}

async function witness(logs: string[], state?: string): Promise<RunningWitness> {
  const running = await startWitness({ name: "witness.test/w1", key: witnessPem, logs, state });
  witnesses.push(running);
  return running;
}
const witnessPem = generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString();

async function post(url: string, body: string): Promise<{ status: number; type: string | null; body: string }> {
  const response = await fetch(`${url}/add-checkpoint`, { method: "POST", body });
  return { status: response.status, type: response.headers.get("content-type"), body: await response.text() };
}

describe("the witness protocol (C2SP tlog-witness)", () => {
  it("cosigns checkpoints that extend the last cosigned head; answers 409 with its size to a stale old size, 422 to a rewritten tree, 403 to another key, 404 to an unknown log", async () => {
    const log = generateKeyPairSync("ed25519");
    const origin = ledgerOrigin(log.publicKey);
    const leaves = Array.from({ length: 40 }, (_, i) => sha(Buffer.from(`entry ${i}`)));
    const tree = new MerkleTree(leaves);
    const checkpoint = (n: number, key = log.privateKey, t = tree) => signNote(checkpointText({ origin, size: n, root: t.root(n) }), origin, key);
    const w = await witness([verifierKey(origin, log.publicKey)]);
    const witnessKey = createPublicKey(createPrivateKey(witnessPem));

    // First sight of the log: old size 0, no proof.
    const first = await post(w.url, submissionBody({ oldSize: 0, proof: [], checkpoint: checkpoint(10) }));
    expect(first.status).toBe(200);
    expect(specCosignatureHolds(first.body, checkpoint(10).split("\n\n")[0]! + "\n", "witness.test/w1", witnessKey)).toBe(true);
    // The same head again, or an extension with its consistency proof: cosigned.
    expect((await post(w.url, submissionBody({ oldSize: 10, proof: [], checkpoint: checkpoint(10) }))).status).toBe(200);
    const second = await post(w.url, submissionBody({ oldSize: 10, proof: tree.consistencyProof(10, 25), checkpoint: checkpoint(25) }));
    expect(second.status).toBe(200);
    expect(w.witness.latest(origin)).toBe(`${checkpoint(25)}${second.body}`);

    // A stale old size (a rollback to the head of size 10): 409, and the size the witness holds.
    const stale = await post(w.url, submissionBody({ oldSize: 10, proof: tree.consistencyProof(10, 30), checkpoint: checkpoint(30) }));
    expect(stale).toMatchObject({ status: 409, type: "text/x.tlog.size", body: "25\n" });
    const rollback = await post(w.url, submissionBody({ oldSize: 25, proof: [], checkpoint: checkpoint(20) }));
    expect(rollback.status).toBe(400);
    // A rewritten history (entry 5 changed), signed with the log's own key: its proof cannot hold.
    const rewritten = new MerkleTree(leaves.map((leaf, i) => (i === 5 ? sha(Buffer.from("changed")) : leaf)));
    expect((await post(w.url, submissionBody({ oldSize: 25, proof: rewritten.consistencyProof(25, 30), checkpoint: checkpoint(30, log.privateKey, rewritten) }))).status).toBe(422);
    expect((await post(w.url, submissionBody({ oldSize: 25, proof: [], checkpoint: checkpoint(25, log.privateKey, rewritten) }))).status).toBe(409);
    // The honest one still goes through; the refusals are kept as evidence.
    expect((await post(w.url, submissionBody({ oldSize: 25, proof: tree.consistencyProof(25, 30), checkpoint: checkpoint(30) }))).status).toBe(200);
    expect(w.witness.refusals().map((r) => r.status)).toEqual(expect.arrayContaining([409, 422]));

    // The log's origin signed by another key: 403. A log the witness does not follow: 404. Garbage: 400.
    const other = generateKeyPairSync("ed25519");
    expect((await post(w.url, submissionBody({ oldSize: 30, proof: tree.consistencyProof(30, 40), checkpoint: checkpoint(40, other.privateKey) }))).status).toBe(403);
    const otherOrigin = ledgerOrigin(other.publicKey);
    expect((await post(w.url, submissionBody({ oldSize: 0, proof: [], checkpoint: signNote(checkpointText({ origin: otherOrigin, size: 1, root: tree.root(1) }), otherOrigin, other.privateKey) }))).status).toBe(404);
    expect((await post(w.url, "old 1\nnot base64\n\nx\n")).status).toBe(400);
    expect((await post(w.url, `old 25\n${"AAAA\n".repeat(3)}\n${checkpoint(30)}`)).status).toBe(400);

    // The monitoring reads: the last cosigned head, and the key.
    expect(await (await fetch(`${w.url}/key`)).text()).toBe(`${w.witness.verifierKey()}\n`);
    expect((await fetch(`${w.url}/checkpoint?origin=${encodeURIComponent(otherOrigin)}`)).status).toBe(404);
  });
});

/** An insider with write access to the store and the stolen signing key: applies `change`, re-hashes the chain and re-signs every checkpoint. */
function rewriteAndResign(file: string, keyFile: string, change: (db: DatabaseSync) => void): void {
  const key = createPrivateKey(readFileSync(keyFile, "utf8"));
  const publicKey = createPublicKey(key);
  const origin = ledgerOrigin(publicKey);
  const db = new DatabaseSync(file);
  try {
    change(db);
    type Row = { seq: number; id: string; ts: number; type: string; org: string; agent_id: string | null; run_id: string | null; step_id: string | null; tool_call_id: string | null; actor: string | null; data: string };
    const rows = db.prepare("SELECT * FROM ledger ORDER BY seq").all() as Row[];
    let prevHash = "0".repeat(64);
    const frontier = new MerkleFrontier();
    const roots = new Map<number, { hash: string; root: Uint8Array }>();
    for (const row of rows) {
      const hash = hashEntry({ seq: row.seq, id: row.id, ts: row.ts, type: row.type, org: row.org, agentId: row.agent_id, runId: row.run_id, stepId: row.step_id, toolCallId: row.tool_call_id, actor: row.actor, prevHash }, row.data);
      setHash(db, row.seq, hash);
      frontier.push(Buffer.from(hash, "hex"));
      roots.set(row.seq, { hash, root: frontier.root() });
      prevHash = hash;
    }
    db.prepare("DELETE FROM checkpoints WHERE seq > ?").run(rows.length);
    for (const { seq } of db.prepare("SELECT seq FROM checkpoints").all() as Array<{ seq: number }>) {
      const { hash, root } = roots.get(seq)!;
      const signature = sign(null, checkpointMessage(seq, hash), key).toString("base64url");
      // Witness cosignatures cannot be forged: the re-signed notes carry the log's signature only.
      const note = signNote(checkpointText({ origin, size: seq, root }), origin, key);
      db.prepare("UPDATE checkpoints SET hash = ?, signature = ?, note = ? WHERE seq = ?").run(hash, signature, note, seq);
    }
  } finally {
    db.close();
  }
}

async function refundAgent(file: string, witnessConfig: { url: string; key: string }, onError?: (error: unknown) => void): Promise<Warden> {
  return new Warden({
    agentId: "billing-agent",
    store: file,
    ledger: { checkpointEvery: 4, witnesses: [witnessConfig] },
    policies: { version: 1, default: "allow", policies: [{ id: "large-refunds", when: { tool: "payments.*" }, action: "require_approval" }] },
    onApprovalRequest: (_request, decide) => decide.approve({ reviewer: "alice", reason: "customer verified" }),
    ...(onError ? { onError } : {}),
  });
}

async function refund(warden: Warden, order: number): Promise<void> {
  await warden.run({ task: `refund order ${order}` }, async (run) => {
    await run.tool("read_order", { id: order }, () => ({ total: 28000 }));
    await run.tool("payments.refund", { amount: 28000, currency: "EUR" }, () => "refunded");
  });
}

describe("a witnessed ledger", () => {
  it("each new checkpoint is cosigned with a consistency proof from the last; verify reports the witnessed heads; bundles carry the cosignature", async () => {
    const dir = join(temp.dir, "honest");
    const file = join(dir, "warden.db");
    // The ledger key first, so the witness can be told which log it follows.
    const probe = new Warden({ agentId: "billing-agent", store: file });
    const logKey = probe.ledger.verifierKey();
    probe.close();
    const w = await witness([logKey]);
    const witnessKey = w.witness.verifierKey();
    const errors: unknown[] = [];
    const warden = await refundAgent(file, { url: w.url, key: witnessKey }, (error) => errors.push(error));
    await refund(warden, 1042);
    const first = await warden.witness();
    expect(first).toMatchObject([{ witness: "witness.test/w1", status: "cosigned" }]);
    expect(await warden.witness()).toMatchObject([{ status: "already", size: first[0]!.size }]);
    await refund(warden, 1043);
    const second = await warden.witness();
    expect(second).toMatchObject([{ status: "cosigned" }]);
    expect(second[0]!.size).toBeGreaterThan(first[0]!.size);
    expect(errors).toEqual([]);

    const result = warden.ledger.verify({ witnesses: [witnessKey, await fetchWitnessedCheckpoint(w.url, warden.ledger.origin())] });
    expect(result).toMatchObject({ ok: true, witnesses: [{ witness: "witness.test/w1", holds: true, newest: second[0]!.size }, { holds: true, newest: second[0]!.size }] });
    expect(result.witnesses![0]!.heads).toBeGreaterThanOrEqual(2);

    const toolCallId = warden.ledger.entries().find((e) => e.type === "approval.approved")!.toolCallId!;
    const bundle = JSON.parse(JSON.stringify(warden.ledger.evidence(toolCallId))) as EvidenceBundle;
    const verified = await verifyEvidence(bundle, { witnesses: [witnessKey] });
    expect(verified).toMatchObject({ ok: true, checkpoint: { witnessed: [{ witness: "witness.test/w1" }] } });
    if (verified.ok) expect(verified.statement).toMatch(/cosigned by witness witness\.test\/w1 at /);
    // A bundle whose checkpoint lost its cosignature no longer satisfies the witness requirement.
    const stripped = { ...bundle, checkpoint: bundle.checkpoint.split("\n").filter((line) => !line.startsWith("— witness.test/w1 ")).join("\n") };
    expect(await verifyEvidence(stripped, { witnesses: [witnessKey] })).toMatchObject({ ok: false, problem: expect.stringMatching(/not cosigned by witness witness\.test\/w1/) });
    expect(await verifyEvidence(stripped)).toMatchObject({ ok: true });
    await warden.shutdown();
  });

  it("an insider who rewrites the SQLite file and re-signs it with the stolen key passes plain verification, but not the witness: verify names the rewrite, the witness refuses the rewritten log", async () => {
    const dir = join(temp.dir, "insider");
    const file = join(dir, "warden.db");
    const keyFile = join(dir, "keys", "ledger.pem");
    const probe = new Warden({ agentId: "billing-agent", store: file });
    const logKey = probe.ledger.verifierKey();
    probe.close();
    const w = await witness([logKey]);
    const witnessKey = w.witness.verifierKey();
    let warden = await refundAgent(file, { url: w.url, key: witnessKey });
    await refund(warden, 1042);
    await refund(warden, 1043);
    expect(await warden.witness()).toMatchObject([{ status: "cosigned" }]);
    const origin = warden.ledger.origin();
    warden.close();

    // The approval's reviewer and reason rewritten, the chain re-hashed, every checkpoint re-signed.
    rewriteAndResign(file, keyFile, (db) => db.prepare("UPDATE ledger SET data = replace(replace(data, 'alice', 'mallory'), 'customer verified', 'no check') WHERE type = 'approval.approved'").run());
    const { ledger, close } = openLedger(file, { publicKey: keyFile });
    try {
      expect(ledger.entries().find((e) => e.type === "approval.approved")!.data).toMatchObject({ reviewer: "mallory" });
      // Without a witness the forgery holds: the stolen key signs whatever the insider wants.
      expect(ledger.verify()).toMatchObject({ ok: true });
      // The cosignatures kept on the checkpoints are gone (they cannot be forged): unwitnessed.
      expect(ledger.verify({ witnesses: [witnessKey] })).toMatchObject({ ok: false, reason: "unwitnessed", witnesses: [{ holds: false, failure: "unwitnessed" }] });
      // The witness's own head, fetched from it: the tree of that size differs.
      const head = await fetchWitnessedCheckpoint(w.url, origin);
      expect(head.key).toBe(witnessKey);
      expect(ledger.verify({ witnesses: [head] })).toMatchObject({ ok: false, reason: "tampered", problem: expect.stringMatching(/cosigned a different tree .* rewritten/), witnesses: [{ failure: "rewritten" }] });
    } finally {
      close();
    }

    // The insider's writer carries on and asks the witness to cosign the rewritten log: refused, and reported.
    const errors: unknown[] = [];
    warden = await refundAgent(file, { url: w.url, key: witnessKey }, (error) => errors.push(error));
    await refund(warden, 1044);
    const refused = await warden.witness();
    expect(refused).toMatchObject([{ status: "refused", problem: expect.stringMatching(/\(422\)|\(409\)/) }]);
    expect(errors.some((e) => e instanceof LedgerIntegrityError)).toBe(true);
    warden.close();
    expect(w.witness.refusals()[0]).toMatchObject({ origin, status: 422 });
  });

  it("a history cut short fails against the witness's head; a witness restarted from its state still refuses the rolled-back log", async () => {
    const dir = join(temp.dir, "truncated");
    const file = join(dir, "warden.db");
    const keyFile = join(dir, "keys", "ledger.pem");
    const state = join(dir, "witness.db");
    const probe = new Warden({ agentId: "billing-agent", store: file });
    const logKey = probe.ledger.verifierKey();
    probe.close();
    let w = await witness([logKey], state);
    const witnessKey = w.witness.verifierKey();
    let warden = await refundAgent(file, { url: w.url, key: witnessKey });
    for (const order of [1, 2, 3]) await refund(warden, order);
    const [cosigned] = await warden.witness();
    const origin = warden.ledger.origin();
    warden.close();
    await w.close();

    // The last refund's entries deleted, and the checkpoints that covered them; the rest re-signed.
    const keep = cosigned!.size - 5;
    rewriteAndResign(file, keyFile, (db) => db.prepare("DELETE FROM ledger WHERE seq > ?").run(keep));
    w = await witness([logKey], state);
    const { ledger, close } = openLedger(file, { publicKey: keyFile });
    try {
      expect(ledger.verify()).toMatchObject({ ok: true, entries: keep });
      const result = ledger.verify({ witnesses: [await fetchWitnessedCheckpoint(w.url, origin)] });
      expect(result).toMatchObject({ ok: false, reason: "tampered", firstBadSeq: keep + 1, witnesses: [{ failure: "truncated" }] });
      if (!result.ok) expect(result.problem).toContain(`entries ${keep + 1}..${cosigned!.size} were removed`);
    } finally {
      close();
    }
    const errors: unknown[] = [];
    warden = await refundAgent(file, { url: w.url, key: witnessKey }, (error) => errors.push(error));
    await refund(warden, 4);
    expect(await warden.witness()).toMatchObject([{ status: "refused" }]);
    expect(errors.some((e) => e instanceof LedgerIntegrityError)).toBe(true);
    warden.close();
  });
});

describe("the witness from the CLI", () => {
  it("`warden witness` serves; `warden ledger verify --witness <url>` holds for the honest store and fails for the rewritten one", async () => {
    const dir = join(temp.dir, "cli");
    const file = join(dir, "warden.db");
    const keyFile = join(dir, "keys", "ledger.pem");
    const probe = new Warden({ agentId: "billing-agent", store: file });
    probe.close();
    const logKey = (await runCli(file, ["ledger", "key"])).stdout.trim();
    expect(logKey).toMatch(/^agent-warden\.dev\/ledger\/[0-9a-f]{16}\+[0-9a-f]{8}\+/);
    const child = spawn(process.execPath, ["--import", "tsx", join(REPO, "src/cli/bin.ts"), "witness", "--name", "witness.test/cli", "--key-file", join(dir, "witness.pem"), "--log", logKey, "--state", join(dir, "witness.db"), "--port", "0"], { cwd: REPO, env: childEnv(), stdio: ["ignore", "pipe", "pipe"] });
    try {
      const lines = createInterface({ input: child.stdout! });
      const output: string[] = [];
      await new Promise<void>((resolve, reject) => {
        child.once("exit", (code) => reject(new Error(`warden witness exited with ${code}`)));
        lines.on("line", (line) => {
          output.push(line);
          if (output.length === 3) resolve();
        });
      });
      const url = /on (http:\/\/\S+),/.exec(output[0]!)![1]!;
      const witnessKey = output[2]!.trim();
      const warden = await refundAgent(file, { url, key: witnessKey });
      await refund(warden, 7);
      expect(await warden.witness()).toMatchObject([{ status: "cosigned" }]);
      warden.close();

      const honest = await runCli(file, ["ledger", "verify", "--public-key", keyFile, "--witness", url, "--witness", witnessKey]);
      expect(honest.code).toBe(0);
      expect(honest.stdout).toMatch(/ledger OK/);
      expect(honest.stdout).toMatch(/witness witness\.test\/cli: holds/);

      rewriteAndResign(file, keyFile, (db) => db.prepare("UPDATE ledger SET data = replace(data, 'alice', 'mallory') WHERE type = 'approval.approved'").run());
      const forged = await runCli(file, ["ledger", "verify", "--public-key", keyFile, "--witness", url]);
      expect(forged.code).toBe(1);
      expect(forged.stdout).toMatch(/ledger BROKEN: witness witness\.test\/cli cosigned a different tree/);
    } finally {
      child.kill("SIGTERM");
    }
  });
});

describe("the control plane countersigns agents' local checkpoints", () => {
  it("an agent with ledger.countersign has each checkpoint countersigned with a consistency proof; a rewritten agent ledger fails against the control plane's head and is refused by it", async () => {
    const { createWardenServer } = await import("agent-warden/server");
    const server = createWardenServer({ db: ":memory:", console: false, heartbeatInterval: 60_000, onError: () => {} });
    const agentKey = (await server.store.createKey({ org: "acme", role: "agent" })).key;
    const reviewerKey = (await server.store.createKey({ org: "acme", role: "reviewer" })).key;
    const { url } = await server.listen(0);
    try {
      const dir = join(temp.dir, "countersign");
      const file = join(dir, "warden.db");
      const errors: unknown[] = [];
      const open = () => new Warden({ agentId: "billing-agent", url, apiKey: agentKey, store: file, ledger: { checkpointEvery: 3, countersign: true }, remote: { flushInterval: "1h", stream: false }, onError: (error) => errors.push(error) });
      let warden = open();
      expect(await warden.ready()).toBe(true);
      for (const order of [1, 2]) await warden.run({ task: `refund ${order}` }, (run) => run.tool("read_order", { order }, () => ({ order })));
      const first = await warden.witness();
      expect(first).toMatchObject([{ status: "cosigned" }]);
      await warden.run({ task: "refund 3" }, (run) => run.tool("read_order", { order: 3 }, () => ({ order: 3 })));
      const second = await warden.witness();
      expect(second).toMatchObject([{ status: "cosigned" }]);
      expect(second[0]!.size).toBeGreaterThan(first[0]!.size);
      expect(errors).toEqual([]);
      const { verifierKey: cpKey } = (await (await fetch(`${url}/v1/ledger/witness/key`, { headers: { authorization: `Bearer ${agentKey}` } })).json()) as { verifierKey: string };
      const origin = warden.ledger.origin();
      const fetchHead = async () => ({ key: cpKey, checkpoint: await (await fetch(`${url}/v1/ledger/witness/checkpoint?origin=${encodeURIComponent(origin)}`, { headers: { authorization: `Bearer ${reviewerKey}` } })).text() });
      expect(warden.ledger.verify({ witnesses: [cpKey, await fetchHead()] })).toMatchObject({ ok: true, witnesses: [{ holds: true }, { holds: true, newest: second[0]!.size }] });
      await warden.shutdown();

      // The agent's machine is compromised: its ledger rewritten and re-signed with its own key.
      rewriteAndResign(file, join(dir, "keys", "ledger.pem"), (db) => db.prepare("UPDATE ledger SET data = replace(data, '\"order\":2', '\"order\":99') WHERE type IN ('tool.called', 'tool.call')").run());
      const { ledger, close } = openLedger(file);
      try {
        expect(ledger.verify()).toMatchObject({ ok: true });
        expect(ledger.verify({ witnesses: [await fetchHead()] })).toMatchObject({ ok: false, reason: "tampered", witnesses: [{ failure: "rewritten" }] });
      } finally {
        close();
      }
      errors.length = 0;
      warden = open();
      await warden.ready();
      await warden.run({ task: "refund 4" }, (run) => run.tool("read_order", { order: 4 }, () => ({ order: 4 })));
      expect(await warden.witness()).toMatchObject([{ status: "refused" }]);
      expect(errors.some((e) => e instanceof LedgerIntegrityError)).toBe(true);
      warden.close();
      // Another organization's key sees none of it.
      const other = (await server.store.createKey({ org: "globex", role: "reviewer" })).key;
      expect((await fetch(`${url}/v1/ledger/witness/checkpoint?origin=${encodeURIComponent(origin)}`, { headers: { authorization: `Bearer ${other}` } })).status).toBe(404);
    } finally {
      await server.close();
    }
  });
});
