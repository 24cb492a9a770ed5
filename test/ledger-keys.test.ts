// Ledger keys apart from the writer, and key rotation: a signing key kept outside the store's folder,
// a rotation recorded in the chain under the old key's signature, old checkpoints and bundles that keep
// verifying, and a key nobody handed over to that is refused.
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterAll, describe, expect, it } from "vitest";
import { openLedger, rotateLedgerKey, verifyEvidence, Warden, type EvidenceBundle } from "agent-warden";
import { canonicalJson } from "../src/internal/canonical.js";
import { checkpointMessage, hashEntry } from "../src/ledger/chain.js";
import { keyIdOf } from "../src/ledger/keys.js";
import { MerkleTree } from "../src/ledger/merkle.js";
import { checkpointText, ledgerOrigin, signNote } from "../src/ledger/note.js";
import { runCli, tempDir } from "./fixtures/proc.js";
import { hexOf, insertEntry } from "./fixtures/ledger-rows.js";

const temp = tempDir("warden-ledger-keys-");
afterAll(() => temp.cleanup());

const publicPem = (key: KeyObject) => (key.type === "public" ? key : createPublicKey(key)).export({ type: "spki", format: "pem" }).toString();
const keyOfFile = (file: string) => createPrivateKey(readFileSync(file, "utf8"));

function agent(file: string, extra: Record<string, unknown> = {}): Warden {
  return new Warden({
    agentId: "billing-agent",
    store: file,
    ledger: { checkpointEvery: 3, ...extra },
    policies: { version: 1, default: "allow", policies: [{ id: "large-refunds", when: { tool: "payments.*" }, action: "require_approval" }] },
    onApprovalRequest: (_request, decide) => decide.approve({ reviewer: "alice", reason: "customer verified" }),
  });
}

async function refund(warden: Warden, order: number): Promise<string> {
  let toolCallId = "";
  await warden.run({ task: `refund order ${order}` }, async (run) => {
    await run.tool("read_order", { id: order }, () => ({ total: 28000 }));
    await run.tool("payments.refund", { amount: 28000, currency: "EUR" }, (ctx) => {
      toolCallId = ctx.toolCallId;
      return "refunded";
    });
  });
  return toolCallId;
}

describe("a signing key kept apart from the store", () => {
  it("a key file outside the store's folder signs; nothing is written beside the store; verification says where the key came from", async () => {
    const file = join(temp.dir, "apart", "store", "warden.db");
    const keyFile = join(temp.dir, "apart", "secrets", "ledger.pem");
    const warden = agent(file, { signingKey: keyFile });
    await refund(warden, 1);
    expect(warden.ledger.verify()).toMatchObject({ ok: true, key: { keyId: keyIdOf(createPublicKey(keyOfFile(keyFile))), source: "configured" } });
    warden.close();
    expect(existsSync(join(temp.dir, "apart", "store", "keys", "ledger.pem"))).toBe(false);
    // An auditor must bring the public half: nothing beside the store to fall back on.
    expect(() => openLedger(file)).toThrow(/no ledger key beside the store/);
    const { ledger, close } = openLedger(file, { publicKey: publicPem(keyOfFile(keyFile)) });
    try {
      expect(ledger.verify()).toMatchObject({ ok: true, key: { source: "supplied" } });
    } finally {
      close();
    }
    // The default key beside the store: `warden ledger verify` warns that it is the store's own.
    const beside = join(temp.dir, "beside", "warden.db");
    const local = agent(beside);
    await refund(local, 2);
    local.close();
    const cli = await runCli(beside, ["ledger", "verify", "--checkpoint-every", "3"]);
    expect(cli.code).toBe(0);
    expect(cli.stdout).toMatch(/read from beside the store \(whoever can rewrite the store can usually replace it: pass --public-key\)/);
  });
});

describe("key rotation", () => {
  it("the old key signs over the handover; the next client signs with the new key; old and new checkpoints and bundles verify, and an auditor holding only the first key learns the next from the chain", async () => {
    const file = join(temp.dir, "rotation", "warden.db");
    const keyFile = join(temp.dir, "rotation", "keys", "ledger.pem");
    let warden = agent(file);
    const before = await refund(warden, 1);
    const oldBundle = JSON.parse(JSON.stringify(warden.ledger.evidence(before))) as EvidenceBundle;
    warden.close();
    const oldKey = createPublicKey(keyOfFile(keyFile));

    const rotation = rotateLedgerKey(file, { actor: "ops" });
    expect(rotation.previousKeyId).toBe(keyIdOf(oldKey));
    const newKey = createPublicKey(keyOfFile(keyFile));
    expect(rotation.keyId).toBe(keyIdOf(newKey));
    expect(readFileSync(rotation.retiredFile, "utf8")).toBe(publicPem(oldKey));

    const errors: unknown[] = [];
    warden = new Warden({ agentId: "billing-agent", store: file, ledger: { checkpointEvery: 3 }, onError: (error) => errors.push(error), policies: { version: 1, default: "allow", policies: [] } });
    const after = await refund(warden, 2);
    warden.flush();
    expect(errors).toEqual([]);
    const handover = warden.ledger.entries().find((e) => e.type === "ledger.key_rotated")!;
    expect(handover).toMatchObject({ seq: rotation.seq, actor: "ops", data: { previousKeyId: keyIdOf(oldKey), keyId: keyIdOf(newKey) } });
    expect(warden.ledger.verify()).toMatchObject({ ok: true, key: { keyId: keyIdOf(newKey), source: "store", retired: [keyIdOf(oldKey)] } });
    const newBundle = JSON.parse(JSON.stringify(warden.ledger.evidence(after))) as EvidenceBundle;
    warden.close();

    // Checkpoints after the handover are the new key's; before it, the old key's.
    const db = new DatabaseSync(file, { readOnly: true });
    const signers = db.prepare("SELECT seq, key_id FROM checkpoints ORDER BY seq").all() as Array<{ seq: number; key_id: string }>;
    db.close();
    expect(signers.filter((c) => c.seq <= rotation.seq).every((c) => c.key_id === keyIdOf(oldKey))).toBe(true);
    expect(signers.filter((c) => c.seq > rotation.seq).map((c) => c.key_id)).toContain(keyIdOf(newKey));

    // Both keys supplied; or only the first, the second learned from the handover the first signed.
    for (const publicKey of [[publicPem(oldKey), publicPem(newKey)], publicPem(oldKey)]) {
      const { ledger, close } = openLedger(file, { publicKey, checkpointEvery: 3 });
      try {
        expect(ledger.verify()).toMatchObject({ ok: true, key: { source: "supplied" } });
      } finally {
        close();
      }
    }
    // Only the new key: the old checkpoints are signed by a key the auditor was not given.
    const { ledger, close } = openLedger(file, { publicKey: publicPem(newKey), checkpointEvery: 3 });
    try {
      expect(ledger.verify()).toMatchObject({ ok: false, reason: "tampered", problem: expect.stringMatching(/signed by an unknown key/) });
    } finally {
      close();
    }

    // The bundle taken before the rotation still verifies against the old key, or the line of keys.
    expect(await verifyEvidence(oldBundle, { publicKey: publicPem(oldKey) })).toMatchObject({ ok: true });
    expect(await verifyEvidence(oldBundle, { publicKey: [publicPem(oldKey), publicPem(newKey)] })).toMatchObject({ ok: true });
    expect(await verifyEvidence(newBundle, { publicKey: [publicPem(oldKey), publicPem(newKey)] })).toMatchObject({ ok: true, key: { verifierKey: rotation.verifierKey } });
    expect(await verifyEvidence(newBundle, { publicKey: publicPem(oldKey) })).toMatchObject({ ok: false, problem: expect.stringMatching(/not the key supplied/) });
  });

  it("a key nobody handed over to is refused: an insider's own key, even behind a forged handover entry it signs itself", async () => {
    const file = join(temp.dir, "forged", "warden.db");
    const warden = agent(file);
    await refund(warden, 1);
    warden.close();
    const trusted = createPublicKey(keyOfFile(join(temp.dir, "forged", "keys", "ledger.pem")));
    const insider = generateKeyPairSync("ed25519");
    // Appends a handover naming the insider's key, and a checkpoint over it signed by that key.
    const db = new DatabaseSync(file);
    try {
      const head = db.prepare("SELECT * FROM ledger ORDER BY seq DESC LIMIT 1").get() as { seq: number; hash: Uint8Array };
      const entry = { seq: head.seq + 1, id: "evt_forged", ts: Date.now(), type: "ledger.key_rotated", org: "default", agentId: null, runId: null, stepId: null, toolCallId: null, actor: "mallory", prevHash: hexOf(head.hash) };
      const dataJson = canonicalJson({ keyId: keyIdOf(insider.publicKey), previousKeyId: keyIdOf(trusted), publicKey: insider.publicKey.export({ format: "der", type: "spki" }).subarray(12).toString("base64") });
      const hash = hashEntry(entry, dataJson);
      insertEntry(db, entry, dataJson, hash);
      const hashes = (db.prepare("SELECT hash FROM ledger ORDER BY seq").all() as Array<{ hash: Uint8Array }>).map((r) => r.hash);
      const origin = ledgerOrigin(insider.publicKey);
      const note = signNote(checkpointText({ origin, size: entry.seq, root: new MerkleTree(hashes).root() }), origin, insider.privateKey);
      db.prepare("INSERT INTO checkpoints (seq, hash, ts, key_id, signature, note) VALUES (?,?,?,?,?,?)").run(entry.seq, hash, Date.now(), keyIdOf(insider.publicKey), sign(null, checkpointMessage(entry.seq, hash), insider.privateKey).toString("base64url"), note);
    } finally {
      db.close();
    }
    const { ledger, close } = openLedger(file, { publicKey: publicPem(trusted), checkpointEvery: 3 });
    try {
      expect(ledger.verify()).toMatchObject({ ok: false, reason: "tampered", problem: expect.stringMatching(new RegExp(`signed by an unknown key \\(${keyIdOf(insider.publicKey)}`)) });
    } finally {
      close();
    }
  });

  it("`warden ledger rotate-key` from the CLI; `ledger verify` then holds with the retired key kept beside the new one", async () => {
    const file = join(temp.dir, "cli", "warden.db");
    const warden = agent(file);
    await refund(warden, 1);
    warden.close();
    const rotated = await runCli(file, ["ledger", "rotate-key"]);
    expect(rotated.code).toBe(0);
    expect(rotated.stdout).toMatch(/ledger key rotated: \S+ -> \S+ \(handover recorded at entry \d+, signed by the old key\)/);
    const next = agent(file);
    await refund(next, 2);
    next.close();
    const verified = await runCli(file, ["--json", "ledger", "verify", "--checkpoint-every", "3"]);
    expect(verified.code).toBe(0);
    expect(JSON.parse(verified.stdout)).toMatchObject({ ok: true, key: { retired: [expect.any(String)] } });
  });
});
