// agent-warden/verify: the WebCrypto bundle verifier, on Node. A bundle from a real ledger verifies and
// says what it proves; each tampering fails with its code; checks that a writer's own bundle can only
// fail when the writer itself recorded something wrong are shown on bundles signed here; and the module
// bundles for a browser with nothing from Node.
import { createHash, createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openLedger, verifyEvidence, Warden, type EvidenceBundle } from "agent-warden";
import { verifyBundle, type BundleVerification, type VerificationFailureCode } from "agent-warden/verify";
import { bundleVerifier } from "../src/console/verify-asset.js";
import { canonicalJson } from "../src/internal/canonical.js";
import { GENESIS_HASH, hashEntry } from "../src/ledger/chain.js";
import { cosignatureLine, witnessVerifierKey } from "../src/ledger/cosignature.js";
import { rawPublicKey } from "../src/ledger/keys.js";
import { MerkleTree } from "../src/ledger/merkle.js";
import { checkpointText, ledgerOrigin, signNote, verifierKey } from "../src/ledger/note.js";
import { CliSession, tempDir } from "./fixtures/proc.js";

const temp = tempDir("warden-verify-");
afterAll(() => temp.cleanup());

const copy = (b: EvidenceBundle): EvidenceBundle => JSON.parse(JSON.stringify(b)) as EvidenceBundle;
const codeOf = (result: BundleVerification): VerificationFailureCode | "ok" => (result.ok ? "ok" : result.code);
const flipBase64 = (b64: string, at = 8): string => {
  const bytes = Buffer.from(b64, "base64");
  bytes[at] = bytes[at]! ^ 0x01;
  return bytes.toString("base64");
};

let bundle: EvidenceBundle;
let pem: string;
let toolCallId: string;

beforeAll(async () => {
  const file = join(temp.dir, "warden.db");
  const warden = new Warden({
    agentId: "billing-agent",
    store: file,
    ledger: { checkpointEvery: 5 },
    policies: { version: 1, default: "allow", policies: [{ id: "large-refunds", when: { tool: "payments.*" }, action: "require_approval" }] },
    onApprovalRequest: (_request, decide) => decide.approve({ reviewer: "alice", reason: "customer verified" }),
  });
  await warden.run({ task: "refund order 1042" }, async (run) => {
    await run.tool("read_order", { id: 1042 }, () => ({ total: 28000 }));
    await run.tool("payments.refund", { amount: 28000, currency: "EUR" }, () => "refunded");
  });
  warden.close();
  pem = createPublicKey(readFileSync(join(temp.dir, "keys", "ledger.pem"), "utf8")).export({ type: "spki", format: "pem" }).toString();
  const { ledger, close } = openLedger(file, { publicKey: pem, checkpointEvery: 5 });
  try {
    toolCallId = ledger.entries().find((e) => e.type === "approval.approved")!.toolCallId!;
    bundle = copy(ledger.evidence(toolCallId));
  } finally {
    close();
  }
});

describe("verifyBundle on a bundle from a real ledger", () => {
  it("proves who approved which call under which policy, in which signed checkpoint, against keys given as PEM, verifier key or raw bytes", async () => {
    const result = await verifyBundle(bundle, { publicKey: pem });
    expect(result).toMatchObject({ ok: true, key: { source: "supplied" }, approvals: [{ status: "approved", reviewer: "alice", reason: "customer verified" }], agentId: "billing-agent", subject: { kind: "toolCall", id: toolCallId } });
    if (!result.ok) return;
    expect(result.statement).toMatch(new RegExp(`^tool call ${toolCallId} by agent billing-agent approved by alice at \\S+Z \\("customer verified"\\) under policy set [0-9a-f]{16}… ?; entries \\d+\\.\\.\\d+ \\(\\d+\\) included in the checkpoint of size \\d+ signed by agent-warden\\.dev/ledger/[0-9a-f]{16}\\+[0-9a-f]{8}$`));
    expect(result.policy!.seq).toBeLessThan(result.entries.from);
    // The decision answers the request recorded for this call: the policy that asked, the arguments shown.
    const requested = bundle.entries.find((e) => e.type === "approval.requested")!;
    expect(result.approvals[0]!.request).toEqual({ seq: requested.seq, policyId: "large-refunds", argsDigest: JSON.parse(requested.dataJson).argsDigest });
    expect(result.approvals[0]!.request!.argsDigest).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.parse(result.policy!.text).policies[0].id).toBe("large-refunds");
    expect(result.checkpoint.size).toBeGreaterThanOrEqual(result.entries.to);
    // The same proof with the key in its other forms; and the Node entry point gives the same answer.
    expect(await verifyBundle(bundle, { publicKey: bundle.log.verifierKey })).toEqual(result);
    expect(await verifyBundle(bundle, { publicKey: new Uint8Array(rawPublicKey(createPublicKey(pem))) })).toEqual(result);
    expect(await verifyBundle(bundle, { publicKey: [generateKeyPairSync("ed25519").publicKey.export({ type: "spki", format: "pem" }).toString(), pem] })).toEqual(result);
    expect(await verifyEvidence(bundle, { publicKey: pem })).toEqual(result);
    expect(await verifyBundle(bundle)).toMatchObject({ ok: true, key: { source: "bundle" }, statement: expect.stringMatching(/the bundle's own key/) });
  });

  it("each tampering fails with its code, and every bad entry is listed", async () => {
    const other = generateKeyPairSync("ed25519").publicKey.export({ type: "spki", format: "pem" }).toString();
    const approval = (b: EvidenceBundle) => b.entries.find((e) => e.type === "approval.approved")!;
    const attacks: Array<[string, (b: EvidenceBundle) => void, VerificationFailureCode, { publicKey: string | undefined }?]> = [
      ["reviewer changed", (b) => void (approval(b).dataJson = approval(b).dataJson.replace("alice", "carol")), "entry_hash"],
      ["entry time changed", (b) => void (approval(b).ts += 1), "entry_hash"],
      ["agent changed", (b) => void (b.entries.at(-1)!.agentId = "other-agent"), "entry_hash"],
      ["data spaced out, same meaning", (b) => void (approval(b).dataJson = JSON.stringify(JSON.parse(approval(b).dataJson), null, 1)), "entry_hash"],
      ["proof hash changed", (b) => void (b.entries[1]!.inclusionProof[0] = flipBase64(b.entries[1]!.inclusionProof[0]!, 0)), "inclusion_failed"],
      ["proof cut", (b) => void b.entries[0]!.inclusionProof.pop(), "inclusion_failed"],
      ["signature bytes changed", (b) => void (b.checkpoint = b.checkpoint.replace(/ (\S+)\n$/, (_m, sig: string) => ` ${flipBase64(sig, 10)}\n`)), "signature_invalid"],
      ["checkpoint size changed", (b) => void (b.checkpoint = b.checkpoint.replace(/\n(\d+)\n/, (_m, n: string) => `\n${Number(n) + 1}\n`)), "signature_invalid"],
      ["signature line removed", (b) => void (b.checkpoint = b.checkpoint.replace(/\n— .*\n$/, "\n— someone.else AAAAAAAAAAAA\n")), "signature_missing"],
      ["wrong key supplied", () => {}, "key_mismatch", { publicKey: other }],
      ["bundle re-keyed", (b) => void (b.log.verifierKey = verifierKey(b.log.origin, generateKeyPairSync("ed25519").publicKey)), "key_mismatch"],
      ["bundle re-keyed, no key supplied", (b) => void (b.log.verifierKey = verifierKey(b.log.origin, generateKeyPairSync("ed25519").publicKey)), "origin_mismatch", { publicKey: undefined }],
      ["policy text changed", (b) => { const p = b.entries.find((e) => e.type === "policy.set")!; p.dataJson = p.dataJson.replace("large-refunds", "small-refunds"); }, "entry_hash"],
      ["entry of another call", (b) => void (b.subject.id = "tc_other"), "entry_foreign"],
      ["entries reordered", (b) => void b.entries.reverse(), "entry_order"],
      ["entry beyond the checkpoint (re-hashed)", (b) => void (b.entries.at(-1)!.seq = 10_000), "entry_hash"],
      ["not a bundle", (b) => void ((b as { format: string }).format = "other/1"), "bundle_malformed"],
    ];
    for (const [name, tamper, code, options] of attacks) {
      const tampered = copy(bundle);
      tamper(tampered);
      const result = await verifyBundle(tampered, { publicKey: options === undefined ? pem : options.publicKey });
      expect(codeOf(result), name).toBe(code);
      if (!result.ok) expect(result.failures[0]).toMatchObject({ code, problem: result.problem });
    }
    // Two entries changed: both named, by seq.
    const twice = copy(bundle);
    twice.entries[0]!.actor = "mallory";
    twice.entries.at(-1)!.actor = "mallory";
    const result = await verifyBundle(twice, { publicKey: pem });
    expect(result.ok ? [] : result.failures.map((f) => [f.code, f.seq])).toEqual([["entry_hash", twice.entries[0]!.seq], ["entry_hash", twice.entries.at(-1)!.seq]]);
  });

  it("witness cosignatures: verified when required, refused when forged or missing", async () => {
    const witness = generateKeyPairSync("ed25519");
    const wkey = witnessVerifierKey("witness.test/w1", witness.publicKey);
    const text = bundle.checkpoint.slice(0, bundle.checkpoint.lastIndexOf("\n\n") + 1);
    const cosigned = copy(bundle);
    cosigned.checkpoint += cosignatureLine(text, "witness.test/w1", witness.privateKey, Date.UTC(2026, 0, 2));
    expect(await verifyBundle(cosigned, { publicKey: pem, witnesses: [wkey] })).toMatchObject({ ok: true, checkpoint: { witnessed: [{ witness: "witness.test/w1", time: Date.UTC(2026, 0, 2) }] }, statement: expect.stringMatching(/cosigned by witness witness\.test\/w1 at 2026-01-02T00:00:00\.000Z$/) });
    const forged = copy(cosigned);
    forged.checkpoint = forged.checkpoint.replace(/ (\S+)\n$/, (_m, sig: string) => ` ${flipBase64(sig, 20)}\n`);
    expect(codeOf(await verifyBundle(forged, { publicKey: pem, witnesses: [wkey] }))).toBe("cosignature_invalid");
    expect(codeOf(await verifyBundle(bundle, { publicKey: pem, witnesses: [wkey] }))).toBe("cosignature_missing");
    expect(codeOf(await verifyBundle(bundle, { publicKey: pem, witnesses: [bundle.log.verifierKey] }))).toBe("key_malformed");
  });
});

/** A log signed here: entries hashed and chained as the ledger does, a Merkle tree, a signed checkpoint. */
function signedBundle(key: { privateKey: KeyObject; publicKey: KeyObject }, drafts: Array<{ type: string; data: unknown; toolCallId: string | null; prevHash?: string }>): EvidenceBundle {
  let prevHash = GENESIS_HASH;
  const rows = drafts.map((d, i) => {
    const fields = { seq: i + 1, id: `evt_${i + 1}`, ts: 1_700_000_000_000 + i, type: d.type, org: "acme", agentId: "billing-agent", runId: null, stepId: null, toolCallId: d.toolCallId, actor: null, prevHash: d.prevHash ?? prevHash };
    const dataJson = canonicalJson(d.data);
    const hash = hashEntry(fields, dataJson);
    prevHash = hash;
    return { ...fields, dataJson, hash };
  });
  const tree = new MerkleTree(rows.map((r) => Buffer.from(r.hash, "hex")));
  const origin = ledgerOrigin(key.publicKey);
  const checkpoint = signNote(checkpointText({ origin, size: rows.length, root: tree.root() }), origin, key.privateKey);
  const entries = rows.map((r) => ({ ...r, inclusionProof: tree.inclusionProof(r.seq - 1).map((p) => Buffer.from(p).toString("base64")) }));
  return { format: "agent-warden.evidence/1", subject: { kind: "toolCall", id: "tc_1" }, log: { origin, verifierKey: verifierKey(origin, key.publicKey) }, checkpoint, entries, createdAt: 1_700_000_001_000 };
}

describe("what only a writer could get wrong is still checked", () => {
  const key = generateKeyPairSync("ed25519");
  const policy = { hash: "", text: canonicalJson({ version: 1, default: "allow", policies: [] }) };
  policy.hash = createHash("sha256").update(policy.text).digest("hex");
  const call = (type: string, data: unknown, prevHash?: string) => ({ type, data, toolCallId: "tc_1", ...(prevHash !== undefined && { prevHash }) });

  it("a signed bundle whose policy text does not match its recorded hash fails policy_mismatch", async () => {
    expect(codeOf(await verifyBundle(signedBundle(key, [{ type: "policy.set", data: policy, toolCallId: null }, call("tool.requested", {})])))).toBe("ok");
    const wrong = signedBundle(key, [{ type: "policy.set", data: { ...policy, text: policy.text.replace("allow", "block") }, toolCallId: null }, call("tool.requested", {})]);
    expect(await verifyBundle(wrong)).toMatchObject({ ok: false, code: "policy_mismatch", problem: "entry 1: the policy set's text does not match its hash" });
  });

  it("a signed bundle whose consecutive entries do not chain fails entry_chain", async () => {
    const broken = signedBundle(key, [call("tool.requested", {}), call("approval.approved", { reviewer: "alice" }, "a".repeat(64))]);
    expect(await verifyBundle(broken)).toMatchObject({ ok: false, code: "entry_chain", failures: [{ code: "entry_chain", seq: 2 }] });
    const notGenesis = signedBundle(key, [call("tool.requested", {}, "b".repeat(64))]);
    expect(codeOf(await verifyBundle(notGenesis))).toBe("entry_chain");
  });
});

describe("the verifier bundles for a browser", () => {
  it("esbuild (platform browser) bundles it from src/verify, zod and the canonical JSON alone, and the bundle verifies on its own", async () => {
    const built = await bundleVerifier();
    // Only the verifier's own files, the canonical JSON writer, the schemas' builder and zod: nothing from Node can resolve on this platform.
    expect(built.inputs.filter((input) => !/(^|\/)node_modules\/zod\//.test(input) && !/^src\/(verify\/|internal\/(canonical|once)\.ts$)/.test(input))).toEqual([]);
    expect(built.inputs.some((input) => input.startsWith("src/verify/"))).toBe(true);
    expect(built.imports).toEqual([]);
    expect(built.text).not.toMatch(/from\s*["']node:|require\(["']node:/);
    const file = join(temp.dir, "verifier.mjs");
    writeFileSync(file, built.text);
    const standalone = (await import(pathToFileURL(file).href)) as typeof import("agent-warden/verify");
    expect(await standalone.verifyBundle(bundle, { publicKey: pem })).toEqual(await verifyBundle(bundle, { publicKey: pem }));
    const tampered = copy(bundle);
    tampered.entries[0]!.inclusionProof[0] = flipBase64(tampered.entries[0]!.inclusionProof[0]!, 0);
    expect(codeOf(await standalone.verifyBundle(tampered))).toBe("inclusion_failed");
  });
});

const dist = join(import.meta.dirname, "..", "dist");
describe.skipIf(!existsSync(join(dist, "verify.js")))("the built agent-warden/verify (run `npx tsup` first)", () => {
  it("reaches only its own chunks and zod, never a Node built-in; the console ships the browser bundle", async () => {
    const seen = new Set<string>();
    const bare = new Set<string>();
    const walk = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      for (const [, spec] of readFileSync(file, "utf8").matchAll(/(?:^|[;\n])\s*(?:import|export)\s*(?:[^"';]*?\sfrom\s*)?["']([^"']+)["']/g)) {
        if (spec!.startsWith(".")) walk(join(dirname(file), spec!));
        else bare.add(spec!);
      }
    };
    walk(join(dist, "verify.js"));
    expect([...bare]).toEqual(["zod"]);
    const shipped = readFileSync(join(dist, "console", "verifier.js"), "utf8");
    expect(shipped).not.toMatch(/(?:from|import)\s*\(?\s*["'](?:node:|zod)/);
    const built = (await import(pathToFileURL(join(dist, "verify.js")).href)) as typeof import("agent-warden/verify");
    expect(await built.verifyBundle(bundle, { publicKey: pem })).toMatchObject({ ok: true });
  });
});

describe("warden verify / warden evidence verify", () => {
  it("prints what is proven, or the failure's code and problem, with exit code 1", async () => {
    const cli = new CliSession();
    try {
      const good = join(temp.dir, "refund-1042.json");
      writeFileSync(good, JSON.stringify(bundle));
      const keyFile = join(temp.dir, "ledger-public.pem");
      writeFileSync(keyFile, pem);
      const store = join(temp.dir, "unused.db");
      for (const command of [["verify"], ["evidence", "verify"]]) {
        const ok = await cli.run(store, [...command, good, "--public-key", keyFile]);
        expect(ok, command.join(" ")).toMatchObject({ code: 0, stdout: expect.stringMatching(new RegExp(`^VERIFIED: tool call ${toolCallId} by agent billing-agent approved by alice`)) });
      }
      const tampered = copy(bundle);
      tampered.entries[0]!.inclusionProof[0] = flipBase64(tampered.entries[0]!.inclusionProof[0]!, 0);
      const bad = join(temp.dir, "tampered.json");
      writeFileSync(bad, JSON.stringify(tampered));
      const refused = await cli.run(store, ["evidence", "verify", bad, "--public-key", keyFile]);
      expect(refused).toMatchObject({ code: 1, stdout: expect.stringMatching(/^NOT VERIFIED \(inclusion_failed\): entry \d+ is not included in the signed checkpoint/) });
      const json = await cli.run(store, ["--json", "verify", bad]);
      expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, code: "inclusion_failed", failures: [{ code: "inclusion_failed", seq: tampered.entries[0]!.seq }] });
    } finally {
      await cli.close();
    }
  }, 90_000);
});
