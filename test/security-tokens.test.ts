// Attacks on delegation tokens by whoever holds one: re-targeting it at another agent, and spelling
// it differently to slip past whatever keys on its text. Each must fail.
import { generateKeyPairSync } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { attenuate, createTokenAuthority, isWithinAgent, subAgentId, TokenError, ToolBlockedError, verifyToken, Warden, type PolicySetInput } from "agent-warden";
import { appendRaw, decode, encode, keyFromSeed } from "./fixtures/make-token-vectors.js";

const clients: Warden[] = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
});

function open(policies: PolicySetInput): Warden {
  const client = new Warden({ agentId: "org-admin", store: ":memory:", policies });
  clients.push(client);
  return client;
}

function reasonOf(fn: () => unknown): string {
  try {
    fn();
    return "ok";
  } catch (error) {
    expect(error).toBeInstanceOf(TokenError);
    return (error as TokenError).reason;
  }
}

async function outcome(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return "ran";
  } catch (error) {
    if (error instanceof ToolBlockedError) return "blocked";
    throw error;
  }
}

/** Signs a block onto `token` with the key it carries, skipping every check attenuate makes. */
function forge(token: string, fields: Record<string, unknown>): string {
  return encode(appendRaw(decode(token), { id: `forged-${Math.random().toString(36).slice(2)}`, issuedAt: Date.now(), ...fields }, keyFromSeed(Buffer.alloc(32, 7))));
}

const rules: PolicySetInput = {
  policies: [{ id: "interns-do-not-deploy", when: { tool: "deploy", agent: "intern" }, action: "block" }],
  limits: [{ id: "one-refund-an-hour", tool: "refund", max: 1, per: "1h", scope: "agent" }],
};

describe("audience re-targeting", () => {
  it("attenuate refuses to re-target a token at another agent", () => {
    const warden = open(rules);
    const intern = warden.tokens.mint({ agentId: "intern", scopes: ["*"], ttl: "1h" });
    for (const audience of ["senior-engineer", "intern-0", "interns", "intern/", "/intern", "Intern"]) {
      expect(reasonOf(() => warden.tokens.attenuate(intern, { audience })), audience).toBe("widened");
    }
    // Narrowing to a sub-identity is allowed, and further down only within it.
    const helper = warden.tokens.attenuate(intern, { audience: "intern/helper" });
    expect(warden.tokens.verify(helper, { audience: "intern/helper" }).authority.agentId).toBe("intern/helper");
    expect(reasonOf(() => warden.tokens.attenuate(helper, { audience: "intern/other" }))).toBe("widened");
    expect(reasonOf(() => warden.tokens.attenuate(helper, { audience: "intern" }))).toBe("widened");
  });

  it("verify refuses a hand-signed block that re-targets the audience, whatever the chain before it", () => {
    const { publicKey, privateKey } = generateKeyPairSync("ed25519");
    const authority = createTokenAuthority({ rootPublicKey: publicKey, rootPrivateKey: privateKey });
    const intern = authority.mint({ agentId: "intern", scopes: ["*"], ttl: "1h" });
    expect(reasonOf(() => authority.verify(forge(intern, { audience: "senior-engineer" })))).toBe("widened");
    const helper = attenuate(intern, { audience: "intern/helper" });
    expect(reasonOf(() => authority.verify(forge(helper, { audience: "senior-engineer" })))).toBe("widened");
    expect(reasonOf(() => authority.verify(forge(helper, { audience: "intern" })))).toBe("widened");
    expect(reasonOf(() => verifyToken(forge(helper, { audience: "intern/helper/sub" }), publicKey))).toBe("ok");
  });

  it("a sub-identity is bound by every rule for its agent: an intern's helper cannot deploy", async () => {
    const warden = open(rules);
    const intern = warden.tokens.mint({ agentId: "intern", scopes: ["*"], ttl: "1h" });
    const asSenior = warden.tokens.attenuate(intern, { audience: "intern/senior-engineer" });
    const task = warden.beginDelegatedTask(asSenior);
    expect(task.agentId).toBe("intern/senior-engineer");
    let deployed = false;
    const result = await task.run({}, (run) =>
      outcome(
        run.tool("deploy", { environment: "production" }, () => {
          deployed = true;
        }),
      ),
    );
    expect(result).toBe("blocked");
    expect(deployed).toBe(false);
    expect(warden.check({ tool: "deploy", agentId: "intern/senior-engineer" } as never).action).toBe("block");
  });

  it("sub-identities share their agent's per-agent rate limit: intern/0, intern/1, … do not each get a window", async () => {
    const warden = open(rules);
    const intern = warden.tokens.mint({ agentId: "intern", scopes: ["*"], ttl: "1h" });
    const results: string[] = [];
    for (let i = 0; i < 4; i++) {
      const task = warden.beginDelegatedTask(warden.tokens.attenuate(intern, { audience: `intern/${i}` }));
      results.push(await task.run({}, (run) => outcome(run.tool("refund", { order: i }, () => "refunded"))));
    }
    expect(results).toEqual(["ran", "blocked", "blocked", "blocked"]);
  });

  it("a rule that exempts a sub-identity does not free it from its agent's rules", () => {
    // Deny by default; allow everyone but the intern: the intern's helper is still denied.
    const warden = open({ default: "block", policies: [{ id: "all-but-interns", when: { agent: { ne: "intern" } }, action: "allow" }] });
    expect(warden.check({ tool: "deploy", agentId: "intern" } as never).action).toBe("block");
    expect(warden.check({ tool: "deploy", agentId: "intern/helper" } as never).action).toBe("block");
    expect(warden.check({ tool: "deploy", agentId: "senior-engineer" } as never).action).toBe("allow");
  });

  it("sub-identity helpers", () => {
    expect(subAgentId("travel-agent", "booking-agent")).toBe("travel-agent/booking-agent");
    expect(subAgentId("travel-agent", "travel-agent/booking-agent")).toBe("travel-agent/booking-agent");
    expect(isWithinAgent("travel-agent/booking-agent", "travel-agent")).toBe(true);
    expect(isWithinAgent("travel-agent-2", "travel-agent")).toBe(false);
    expect(isWithinAgent("travel-agent/", "travel-agent")).toBe(false);
  });
});

describe("one canonical encoding", () => {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const authority = createTokenAuthority({ rootPublicKey: publicKey, rootPrivateKey: privateKey });
  const token = authority.mint({ agentId: "agent", scopes: ["flights:*"], ttl: "1h", maxAmount: { amount: 5000, currency: "EUR" } });
  const json = () => JSON.parse(Buffer.from(token.slice(5), "base64url").toString("utf8")) as Record<string, unknown>;
  const spelled = (text: string) => `wdn1.${Buffer.from(text).toString("base64url")}`;

  it("every other spelling of a valid token is malformed", () => {
    const canonicalText = Buffer.from(token.slice(5), "base64url").toString("utf8");
    const variants: Record<string, string> = {
      "pretty-printed": spelled(JSON.stringify(json(), null, 1)),
      "keys reordered": spelled(JSON.stringify({ v: 1, proof: json()["proof"], blocks: json()["blocks"] })),
      "duplicate key": spelled(canonicalText.replace('{"blocks"', '{"v":1,"blocks"')),
      "unknown field in maxAmount": spelled(canonicalText.replace('"currency":"EUR"', '"currency":"EUR","note":"x"')),
      "escaped letter": spelled(canonicalText.replace('"agent"', '"\\u0061gent"')),
      "trailing newline": spelled(`${canonicalText}\n`),
      padded: `${token}${"=".repeat((4 - ((token.length - 5) % 4)) % 4 || 4)}`,
    };
    for (const [name, variant] of Object.entries(variants)) {
      expect(variant, name).not.toBe(token);
      expect(reasonOf(() => authority.verify(variant)), name).toBe("malformed");
      expect(reasonOf(() => authority.inspect(variant)), name).toBe("malformed");
    }
    expect(reasonOf(() => authority.verify(token))).toBe("ok");
  });

  it("a non-string whose string form is a verified token is refused, even once the token is cached", () => {
    expect(reasonOf(() => authority.verify(token))).toBe("ok");
    const lookalikes: unknown[] = [{ toString: () => token }, new String(token), [token], Buffer.from(token)];
    for (const lookalike of lookalikes) {
      expect(reasonOf(() => authority.verify(lookalike as string))).toBe("malformed");
      expect(reasonOf(() => verifyToken(lookalike as string, publicKey))).toBe("malformed");
      expect(reasonOf(() => attenuate(lookalike as string, {}))).toBe("malformed");
    }
  });
});
