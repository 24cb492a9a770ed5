import { generateKeyPairSync, randomBytes } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { TokenError } from "../src/errors.js";
import { CurrencyConverter, type Money } from "../src/money.js";
import { isWithinAgent } from "../src/policy/identity.js";
import { scopeCovered, toolCovered } from "../src/tokens/scopes.js";
import { attenuate, createTokenAuthority, hasPermission, toolAllowed, type Authority, type MintInput, type Narrowing } from "../src/tokens/token.js";
import { appendRaw, decode, encode, keyFromSeed, type Fields } from "./fixtures/make-token-vectors.js";

const T0 = Date.UTC(2026, 5, 1);
const HOUR = 3_600_000;
const SCOPES = ["*", "flights:*", "flights:book", "flights:book:intl", "flights:cancel", "hotels:*", "hotels:book", "cars:rent"];
const PERMISSIONS = [...SCOPES, "flights:book:dom", "flights:x", "hotels:cancel", "cars:return", "misc"];
const TOOLS = ["*", "payments.*", "payments.refund", "payments.charge", "search", "read_?", "read_*", "book_*"];
const TOOL_NAMES = ["payments.refund", "payments.charge", "payments.x", "search", "read_a", "read_ab", "book_flight", "deploy"];
const converter = new CurrencyConverter({ USD: { EUR: "0.92" } });

const { privateKey, publicKey } = generateKeyPairSync("ed25519");
const authority = createTokenAuthority({ rootPrivateKey: privateKey, rootPublicKey: publicKey, currency: converter, now: () => T0 });

const money = fc.record({ amount: fc.integer({ min: 0, max: 200_000 }), currency: fc.constantFrom("EUR", "USD") });
const ttl = fc.integer({ min: 1, max: 3 * HOUR });
const rootInput: fc.Arbitrary<MintInput> = fc.record(
  {
    agentId: fc.constant("root-agent"),
    scopes: fc.subarray(SCOPES),
    maxAmount: money,
    ttl,
    tools: fc.subarray(TOOLS),
    depth: fc.integer({ min: 0, max: 8 }),
  },
  { requiredKeys: ["agentId", "scopes", "ttl"] },
);
/**
 * How to derive a narrowing from whatever the parent turns out to be: keep a random part of its
 * scopes and tools (sometimes adding a random extra, which may widen), take a percentage of its cap
 * and of its remaining lifetime (above 100 widens), and pick a depth at random (which may out-delegate it).
 */
interface Recipe {
  scopes?: { keep: number; extra: string[] };
  tools?: { keep: number; extra: string[] };
  amount?: { percent: number; otherCurrency: boolean };
  /** Keep the parent's audience, narrow it to a sub-identity, or re-target it elsewhere (which widens). */
  audience?: "same" | "sub" | "parent-prefix" | "other";
  ttlPercent?: number;
  depth?: number;
}

const extras = (vocabulary: string[]) => fc.oneof({ weight: 3, arbitrary: fc.constant<string[]>([]) }, { weight: 1, arbitrary: fc.subarray(vocabulary, { maxLength: 1 }) });
const recipe: fc.Arbitrary<Recipe> = fc.record(
  {
    scopes: fc.record({ keep: fc.nat(), extra: extras(SCOPES) }),
    tools: fc.record({ keep: fc.nat(), extra: extras(TOOLS) }),
    amount: fc.record({ percent: fc.integer({ min: 0, max: 120 }), otherCurrency: fc.boolean() }),
    audience: fc.constantFrom("same", "sub", "sub", "parent-prefix", "other"),
    ttlPercent: fc.integer({ min: 1, max: 120 }),
    depth: fc.integer({ min: 0, max: 5 }),
  },
  { requiredKeys: [] },
);

function narrowingFor(parent: Authority, r: Recipe): Narrowing {
  const pick = (from: string[], keep: number) => from.filter((_, i) => (keep >> i) & 1);
  const narrowing: Narrowing = {};
  if (r.scopes) narrowing.scopes = [...pick(parent.scopes, r.scopes.keep), ...r.scopes.extra];
  if (r.tools) narrowing.tools = [...pick(parent.tools ?? TOOLS, r.tools.keep), ...r.tools.extra];
  if (r.amount) {
    const base = parent.maxAmount ?? { amount: 100_000, currency: "EUR" };
    const scaled = { amount: Math.floor((base.amount * r.amount.percent) / 100), currency: base.currency };
    narrowing.maxAmount = r.amount.otherCurrency ? converter.convert(scaled, base.currency === "EUR" ? "USD" : "EUR") : scaled;
  }
  const agent = parent.agentId ?? "root-agent";
  const audiences = { same: agent, sub: `${agent}/sub`, "parent-prefix": `${agent}-sub`, other: "agent-b" };
  if (r.audience !== undefined) narrowing.audience = audiences[r.audience];
  if (r.ttlPercent !== undefined) narrowing.ttl = Math.max(1, Math.floor(((parent.expiresAt - T0) * r.ttlPercent) / 100));
  if (r.depth !== undefined) narrowing.depth = r.depth;
  return narrowing;
}

interface Step {
  token: string;
  authority: Authority;
}

/** Applies each recipe that attenuate accepts; returns every (token, authority) pair along the way. */
function chain(root: MintInput, recipes: Recipe[], onRefused: (error: unknown) => void = () => {}): Step[] {
  const token = authority.mint(root);
  const steps: Step[] = [{ token, authority: authority.verify(token).authority }];
  for (const r of recipes) {
    const parent = steps[steps.length - 1]!;
    let child: string;
    try {
      child = attenuate(parent.token, narrowingFor(parent.authority, r), { now: T0, currency: converter });
    } catch (error) {
      onRefused(error);
      continue;
    }
    steps.push({ token: child, authority: authority.verify(child).authority });
  }
  return steps;
}

function expectWithin(child: Authority, parent: Authority): void {
  for (const permission of PERMISSIONS) {
    if (hasPermission(child, permission)) expect(hasPermission(parent, permission), permission).toBe(true);
  }
  if (parent.maxAmount) {
    expect(child.maxAmount).toBeDefined();
    expect(converter.within(child.maxAmount!, parent.maxAmount)).toBe(true);
  }
  if (parent.tools) {
    expect(child.tools).toBeDefined();
    for (const tool of child.tools!) expect(toolCovered(tool, parent.tools), tool).toBe(true);
    for (const name of TOOL_NAMES) if (toolAllowed(child, name)) expect(toolAllowed(parent, name), name).toBe(true);
  }
  expect(child.expiresAt).toBeLessThanOrEqual(parent.expiresAt);
  expect(child.depth).toBeLessThan(parent.depth);
  expect(isWithinAgent(child.agentId!, parent.agentId!), `${child.agentId} within ${parent.agentId}`).toBe(true);
}

type Dimension = "scopes" | "amount" | "amount-currency" | "tools" | "expiry" | "depth" | "audience";

/** A narrowing that claims more than `parent` in `dimension`, or in expiry when that dimension cannot be widened. */
function widening(parent: Authority, dimension: Dimension): Narrowing {
  const cap = parent.maxAmount;
  switch (dimension) {
    case "scopes": {
      const extra = SCOPES.find((scope) => !scopeCovered(scope, parent.scopes));
      if (extra !== undefined) return { scopes: [...parent.scopes, extra] };
      break;
    }
    case "amount":
      if (cap) return { maxAmount: { amount: cap.amount + 1, currency: cap.currency } };
      break;
    case "amount-currency":
      if (cap) return { maxAmount: moreInOtherCurrency(cap) };
      break;
    case "tools": {
      const extra = parent.tools && TOOLS.find((tool) => !toolCovered(tool, parent.tools!));
      if (extra !== undefined) return { tools: [...parent.tools!, extra] };
      break;
    }
    case "depth":
      return { depth: parent.depth };
    case "audience":
      return { audience: `${parent.agentId}-elsewhere` };
    case "expiry":
      break;
  }
  return { expiresAt: parent.expiresAt + 1 };
}

/** The smallest amount in the other currency that converts to more than `cap`. */
function moreInOtherCurrency(cap: Money): Money {
  const currency = cap.currency === "EUR" ? "USD" : "EUR";
  let amount = converter.convert(cap, currency).amount;
  while (converter.within({ amount, currency }, cap)) amount++;
  return { amount, currency };
}

/** Signs `narrowing` onto the token with its carried key, skipping attenuate's checks. */
function handCraft(token: string, parent: Authority, narrowing: Narrowing): string {
  const fields: Fields = { id: `crafted-${randomBytes(6).toString("hex")}`, issuedAt: T0 };
  if (parent.depth > 0) fields["depth"] = parent.depth - 1;
  Object.assign(fields, narrowing);
  return encode(appendRaw(decode(token), fields, keyFromSeed(randomBytes(32))));
}

function reasonOf(fn: () => unknown): string {
  try {
    fn();
    return "ok";
  } catch (error) {
    return error instanceof TokenError ? error.reason : `unexpected ${String(error)}`;
  }
}

describe("token attenuation properties", () => {
  it("whatever attenuate accepts verifies to a subset of its parent", () => {
    let accepted = 0;
    let refused = 0;
    fc.assert(
      fc.property(rootInput, fc.array(recipe, { maxLength: 6 }), (root, recipes) => {
        const steps = chain(root, recipes, (error) => {
          refused++;
          expect(error).toBeInstanceOf(TokenError);
          expect((error as TokenError).reason).toBe("widened");
        });
        for (let i = 1; i < steps.length; i++) expectWithin(steps[i]!.authority, steps[i - 1]!.authority);
        accepted += steps.length - 1;
      }),
      { numRuns: 300 },
    );
    // Guard against a vacuous property: both outcomes must be common.
    expect(accepted).toBeGreaterThan(150);
    expect(refused).toBeGreaterThan(300);
  });

  it("a correctly signed block that widens fails verification, and attenuate refuses it too", () => {
    const dimension = fc.constantFrom<Dimension>("scopes", "amount", "amount-currency", "tools", "expiry", "depth", "audience");
    fc.assert(
      fc.property(rootInput, fc.array(recipe, { maxLength: 4 }), fc.nat(), dimension, (root, recipes, pick, dim) => {
        const steps = chain(root, recipes);
        const { token, authority: parent } = steps[pick % steps.length]!;
        const narrowing = widening(parent, dim);
        expect(reasonOf(() => authority.verify(handCraft(token, parent, narrowing))), JSON.stringify(narrowing)).toBe("widened");
        expect(reasonOf(() => attenuate(token, narrowing, { now: T0, currency: converter }))).toBe("widened");
      }),
      { numRuns: 300 },
    );
  });

  it("a hand-crafted block that stays within its parent verifies", () => {
    fc.assert(
      fc.property(rootInput, fc.array(recipe, { maxLength: 4 }), (root, recipes) => {
        const steps = chain(root, recipes);
        const { token, authority: parent } = steps[steps.length - 1]!;
        fc.pre(parent.depth > 0);
        const verified = authority.verify(handCraft(token, parent, { scopes: parent.scopes.slice(1) })).authority;
        expectWithin(verified, parent);
      }),
      { numRuns: 100 },
    );
  });
});
