// Merkle proofs against an independent RFC 9162 reference, checkpoints as C2SP notes read by an
// independent parser, and evidence bundles verified offline (and refused once tampered with).
import { createHash, createPublicKey } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openLedger, verifyEvidence, Warden, type EvidenceBundle } from "agent-warden";
import { MerkleTree, verifyConsistency, verifyInclusion } from "../src/ledger/merkle.js";
import { tempDir } from "./fixtures/proc.js";

const sha = (...parts: Buffer[]) => createHash("sha256").update(Buffer.concat(parts)).digest();
// RFC 9162 §2.1.1-2.1.4, written from the text: MTH, PATH and PROOF over the list of leaf inputs.
const k = (n: number) => 2 ** Math.ceil(Math.log2(n) - 1);
const mth = (d: Buffer[]): Buffer => (d.length === 0 ? sha() : d.length === 1 ? sha(Buffer.of(0), d[0]!) : sha(Buffer.of(1), mth(d.slice(0, k(d.length))), mth(d.slice(k(d.length)))));
const path = (m: number, d: Buffer[]): Buffer[] => (d.length <= 1 ? [] : m < k(d.length) ? [...path(m, d.slice(0, k(d.length))), mth(d.slice(k(d.length)))] : [...path(m - k(d.length), d.slice(k(d.length))), mth(d.slice(0, k(d.length)))]);
const subproof = (m: number, d: Buffer[], b: boolean): Buffer[] => {
  if (m === d.length) return b ? [] : [mth(d)];
  const kk = k(d.length);
  return m <= kk ? [...subproof(m, d.slice(0, kk), b), mth(d.slice(kk))] : [...subproof(m - kk, d.slice(kk), false), mth(d.slice(0, kk))];
};

describe("RFC 9162 Merkle tree", () => {
  const leaves = Array.from({ length: 37 }, (_, i) => sha(Buffer.from(`entry ${i}`)));
  it("roots, inclusion and consistency proofs equal the reference for every size and index; mutations fail", () => {
    const tree = new MerkleTree(leaves);
    let checked = 0;
    for (let n = 1; n <= leaves.length; n++) {
      const d = leaves.slice(0, n);
      const root = mth(d);
      expect(Buffer.from(tree.root(n))).toEqual(root);
      for (let i = 0; i < n; i++) {
        const proof = tree.inclusionProof(i, n);
        expect(proof.map((p) => Buffer.from(p))).toEqual(path(i, d));
        expect(verifyInclusion(leaves[i]!, i, n, proof, root)).toBe(true);
        expect(verifyInclusion(leaves[(i + 1) % n]!, i, n, proof, root) && n > 1).toBe(false);
        if (proof.length > 0) expect(verifyInclusion(leaves[i]!, i, n, [sha(Buffer.from("x")), ...proof.slice(1)], root)).toBe(false);
        checked++;
      }
      for (let m = 1; m <= n; m++) {
        const proof = tree.consistencyProof(m, n);
        expect(proof.map((p) => Buffer.from(p))).toEqual(subproof(m, d, true));
        expect(verifyConsistency(m, n, mth(leaves.slice(0, m)), root, proof)).toBe(true);
        if (m < n) expect(verifyConsistency(m, n, mth(leaves.slice(1, m + 1)), root, proof)).toBe(false);
      }
    }
    expect(checked).toBe((37 * 38) / 2);
  });
});

const temp = tempDir("warden-evidence-");
afterAll(() => temp.cleanup());

describe("evidence bundles", () => {
  it("a bundle for an approved refund verifies offline and says what it proves; each tampering is named", async () => {
    const file = join(temp.dir, "warden.db");
    const warden = new Warden({
      agentId: "billing-agent",
      store: file,
      ledger: { checkpointEvery: 5 },
      policies: { version: 1, default: "allow", policies: [{ id: "large-refunds", when: { tool: "payments.*" }, action: "require_approval" }] },
      onApprovalRequest: (_request, decide) => decide.approve({ reviewer: "alice", reason: "customer verified" }),
    });
    let toolCallId = "";
    await warden.run({ task: "refund order 1042" }, async (run) => {
      await run.tool("read_order", { id: 1042 }, () => ({ total: 28000 }));
      await run.tool("payments.refund", { amount: 28000, currency: "EUR" }, () => "refunded");
    });
    warden.close();
    const pem = createPublicKey(readFileSync(join(temp.dir, "keys", "ledger.pem"), "utf8")).export({ type: "spki", format: "pem" }).toString();
    const { ledger, close } = openLedger(file, { publicKey: pem, checkpointEvery: 5 });
    let bundle: EvidenceBundle;
    try {
      toolCallId = ledger.entries().find((e) => e.type === "approval.approved")!.toolCallId!;
      bundle = JSON.parse(JSON.stringify(ledger.evidence(toolCallId))) as EvidenceBundle;
    } finally {
      close();
    }
    // The checkpoint is a C2SP signed note, read here by a parser written from the spec text.
    const [text, sigs] = bundle.checkpoint.split("\n\n") as [string, string];
    const [origin, size, root] = text.split("\n");
    expect(origin).toBe(bundle.log.origin);
    expect(Number(size)).toBeGreaterThanOrEqual(bundle.entries.at(-1)!.seq);
    expect(Buffer.from(root!, "base64")).toHaveLength(32);
    const sig = /^— (\S+) (\S+)$/u.exec(sigs.trim())!;
    const raw = createPublicKey(pem).export({ format: "der", type: "spki" }).subarray(12);
    expect(Buffer.from(sig[2]!, "base64").subarray(0, 4)).toEqual(sha(Buffer.from(`${origin}\n`), Buffer.of(1), raw).subarray(0, 4));

    const result = await verifyEvidence(bundle, { publicKey: pem });
    expect(result).toMatchObject({ ok: true, key: { source: "supplied" }, approvals: [{ status: "approved", reviewer: "alice", reason: "customer verified" }], agentId: "billing-agent" });
    if (result.ok) expect(result.statement).toMatch(new RegExp(`^tool call ${toolCallId} by agent billing-agent approved by alice .*entries \\d+\\.\\.\\d+ \\(\\d+\\) included in the checkpoint of size \\d+ signed by`));
    expect(await verifyEvidence(bundle)).toMatchObject({ ok: true, key: { source: "bundle" } });

    const attacks: Array<[string, (b: EvidenceBundle) => void, RegExp]> = [
      ["reviewer changed", (b) => { const e = b.entries.find((x) => x.type === "approval.approved")!; e.dataJson = e.dataJson.replace("alice", "carol"); }, /modified/],
      ["reviewer changed, hash recomputed", (b) => { const e = b.entries.find((x) => x.type === "approval.approved")!; e.dataJson = e.dataJson.replace("alice", "carol"); e.hash = "0".repeat(64); }, /modified/],
      ["entry of another call", (b) => { b.subject.id = "tc_other"; }, /does not belong/],
      ["proof cut", (b) => { b.entries[0]!.inclusionProof.pop(); }, /not included/],
      ["checkpoint root changed", (b) => { b.checkpoint = b.checkpoint.replace(root!, Buffer.alloc(32).toString("base64")); }, /signature|invalid/],
      ["entries beyond the checkpoint", (b) => { b.entries.at(-1)!.seq = 10_000; }, /modified|beyond/],
    ];
    for (const [name, tamper, problem] of attacks) {
      const copy = JSON.parse(JSON.stringify(bundle)) as EvidenceBundle;
      tamper(copy);
      expect(await verifyEvidence(copy, { publicKey: pem }), name).toMatchObject({ ok: false, problem: expect.stringMatching(problem) });
    }
    // Another key supplied out of band: refused.
    const other = (await import("node:crypto")).generateKeyPairSync("ed25519").publicKey.export({ type: "spki", format: "pem" }).toString();
    expect(await verifyEvidence(bundle, { publicKey: other })).toMatchObject({ ok: false, problem: expect.stringMatching(/not the key supplied/) });
  });
});

describe("the policy set in force is in the ledger", () => {
  it("each new policy set is recorded once, a restart with the same set adds nothing, and a bundle names the set the call was decided under", async () => {
    const file = join(temp.dir, "policies.db");
    const first = { version: 1 as const, default: "allow" as const, policies: [{ id: "no-deploy", when: { tool: "deploy" }, action: "block" as const }] };
    const open = () => new Warden({ agentId: "ops", store: file, ledger: { checkpointEvery: 2 }, policies: first });
    let warden = open();
    const recorded = () => warden.ledger.entries().filter((entry) => entry.type === "policy.set");
    // Nothing recorded, nothing written; the set goes in before the first entry.
    expect(recorded()).toHaveLength(0);
    warden.beginToolCall({ tool: "read", args: {} }).complete("ok");
    expect(recorded()).toHaveLength(1);
    warden.close();
    warden = open();
    warden.beginToolCall({ tool: "read", args: {} }).complete("ok");
    expect(recorded()).toHaveLength(1);
    warden.setPolicies({ ...first, policies: [{ id: "no-deploy", when: { tool: "deploy" }, action: "require_approval" as const }] });
    const call = warden.beginToolCall({ tool: "read", args: {} });
    call.complete("ok");
    expect(recorded()).toHaveLength(2);
    warden.close();
    const { ledger, close } = openLedger(file, { checkpointEvery: 2 });
    try {
      const result = await verifyEvidence(ledger.evidence(call.toolCallId));
      expect(result.ok && JSON.parse(result.policy!.text).policies[0].action).toBe("require_approval");
    } finally {
      close();
    }
  });
});
