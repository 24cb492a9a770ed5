// Delegation tokens: verifications and attenuations per second for chains of 1, 3 and 5 blocks.
// Verifying costs one Ed25519 verification per block plus the carried-key check; attenuating costs
// a key generation, a signature and the offline widening check over the chain.
import { generateKeyPairSync } from "node:crypto";
import { attenuate, createTokenAuthority, inspectToken } from "../src/tokens/token.js";
import { measureSync, type BenchRow } from "./harness.js";

const DEPTHS = [1, 3, 5] as const;

export async function run(): Promise<BenchRow[]> {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const authority = createTokenAuthority({ rootPrivateKey: privateKey, rootPublicKey: publicKey });
  const rows: BenchRow[] = [];
  for (const depth of DEPTHS) {
    const token = chainOf(depth, authority.mint({ agentId: "planner", scopes: ["flights:*", "hotels:*"], maxAmount: { amount: 100_000, currency: "EUR" }, ttl: "1h", depth: 8 }));
    const options = { samples: 300, batch: 5, warmup: 200 };
    const audience = authority.verify(token).authority.agentId;
    // Cold: a token never seen before, so every signature is checked. Warm: the same token again
    // (signatures cached; revocation, halts, expiry and audience still checked).
    const fresh = Array.from({ length: 400 }, () => attenuate(token, { scopes: ["flights:book"] }));
    let next = 0;
    const cold = measureSync(() => authority.verify(fresh[next++ % fresh.length]!), { samples: 300, batch: 1, warmup: 0 });
    rows.push({ group: "tokens", name: `verify, ${depth + 1} blocks, cold`, ...cold, note: "every signature checked" });
    const verify = measureSync(() => authority.verify(token, { audience }), options);
    rows.push({ group: "tokens", name: `verify, ${depth} block${depth === 1 ? "" : "s"}, warm`, ...verify, note: `${token.length} chars, signatures cached` });
    const narrow = measureSync(() => attenuate(token, { scopes: ["flights:book"] }), options);
    rows.push({ group: "tokens", name: `attenuate, ${depth} block${depth === 1 ? "" : "s"}`, ...narrow });
  }
  return rows;
}

/** Appends blocks until the chain has `blocks` blocks, narrowing a little at each step. */
function chainOf(blocks: number, root: string): string {
  let token = root;
  let audience = inspectToken(root).chain[0]!.audience!;
  for (let i = 1; i < blocks; i++) {
    const last = i === blocks - 1;
    // Each block narrows the audience to a sub-identity of the one before.
    audience = `${audience}/${last ? "agent-last" : `agent-${i}`}`;
    token = attenuate(token, { audience, maxAmount: { amount: 100_000 - i * 1000, currency: "EUR" }, scopes: ["flights:*"] });
  }
  return token;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { printTable } = await import("./harness.js");
  printTable(await run());
}
