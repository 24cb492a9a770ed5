import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ConfigError, InvalidInputError, TokenError } from "../src/errors.js";
import { CurrencyConverter } from "../src/money.js";
import { scopeCovered, scopeMatches, toolCovered, toolGlobCovers, toolMatches } from "../src/tokens/scopes.js";
import {
  attenuate,
  createTokenAuthority,
  hasPermission,
  inspectToken,
  keyId,
  parseDuration,
  seal,
  toolAllowed,
  verifyToken,
  withinAmount,
  type Authority,
  type HaltInfo,
  type Narrowing,
  type VerifyTokenOptions,
} from "../src/tokens/token.js";
import { decode, encode, renderVectors, VECTORS_PATH, type VectorCase, type VectorFile } from "./fixtures/make-token-vectors.js";

const vectors = JSON.parse(readFileSync(VECTORS_PATH, "utf8")) as VectorFile;
const publicKeys: Record<VectorCase["rootPublicKey"], KeyObject> = {
  root: createPublicKey({ key: Buffer.from(vectors.keys.root.spki, "base64"), format: "der", type: "spki" }),
  other: createPublicKey({ key: Buffer.from(vectors.keys.other.spki, "base64"), format: "der", type: "spki" }),
};
const rootPrivate = createPrivateKey({ key: Buffer.from(vectors.keys.root.pkcs8, "base64"), format: "der", type: "pkcs8" });

/** The TokenError reason `fn` throws, or "ok". Anything but a TokenError fails the test. */
function outcome(fn: () => unknown): string {
  try {
    fn();
    return "ok";
  } catch (error) {
    expect(error).toBeInstanceOf(TokenError);
    return (error as TokenError).reason;
  }
}

function optionsFor(c: VectorCase): VerifyTokenOptions {
  const halt = c.halt;
  return {
    ...c.verifyOptions,
    currency: c.rates ? new CurrencyConverter(c.rates) : undefined,
    isRevoked: (id) => c.revoked?.includes(id) ?? false,
    isHalted: ({ agentId, issuedAt }: HaltInfo) => halt !== undefined && (halt.agentId === undefined || halt.agentId === agentId) && issuedAt < halt.at,
  };
}

/** The token a case verifies: its own, or the result of the attenuation it describes. */
function tokenFor(c: VectorCase): string {
  if (c.op !== "attenuate") return c.token;
  return attenuate(c.token, c.narrowing as Narrowing, { now: c.verifyOptions.now, currency: optionsFor(c).currency });
}

describe("token vectors", () => {
  it("are reproducible from their generator and cover enough cases", () => {
    expect(renderVectors()).toBe(readFileSync(VECTORS_PATH, "utf8"));
    expect(vectors.cases.length).toBeGreaterThanOrEqual(30);
    expect(new Set(vectors.cases.map((c) => c.name)).size).toBe(vectors.cases.length);
  });

  it.each(vectors.cases.map((c) => [c.name, c] as const))("%s", (_name, c) => {
    const options = optionsFor(c);
    if (!c.expect.ok) {
      expect(outcome(() => verifyToken(tokenFor(c), publicKeys[c.rootPublicKey], options))).toBe(c.expect.reason);
      return;
    }
    const verified = verifyToken(tokenFor(c), publicKeys[c.rootPublicKey], options);
    expect(verified.authority).toStrictEqual(c.expect.authority);
    expect(verified.sealed).toBe(c.expect.sealed);
    expect(verified.expiresAt).toBe(c.expect.authority.expiresAt);
  });

  it.each(vectors.cases.filter((c) => c.op !== "attenuate").map((c) => [c.name, c] as const))("%s (through createTokenAuthority)", (_name, c) => {
    const { audience, now } = c.verifyOptions;
    const { isRevoked, isHalted, currency } = optionsFor(c);
    const authority = createTokenAuthority({ rootPublicKey: publicKeys[c.rootPublicKey], isRevoked, isHalted, currency, now: () => now });
    const expected = c.expect.ok ? "ok" : c.expect.reason;
    expect(outcome(() => authority.verify(c.token, { audience }))).toBe(expected);
  });

  it("attenuate refuses a sealed token before anything else", () => {
    const c = vectors.cases.find((v) => v.name === "sealed then attenuated")!;
    expect(outcome(() => attenuate(c.token, {}))).toBe("sealed");
  });
});

describe("token authority", () => {
  const T0 = Date.UTC(2026, 2, 1);
  const authority = createTokenAuthority({ rootPrivateKey: rootPrivate, rootPublicKey: publicKeys.root, now: () => T0 });
  const mintBasic = () =>
    authority.mint({ agentId: "planner", scopes: ["flights:*", "hotels:book"], maxAmount: { amount: 50_000, currency: "EUR" }, ttl: "15m", tools: ["payments.*", "search"] });

  it("never mints an id that a command line would read as an option", () => {
    // 2,000 random base64url ids would start with "-" about 31 times.
    const ids = Array.from({ length: 2_000 }, () => inspectToken(mintBasic()).id);
    expect(ids.filter((id) => id.startsWith("-"))).toEqual([]);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("mints a token that verifies with defaults", () => {
    const token = mintBasic();
    expect(token.startsWith("wdn1.")).toBe(true);
    const verified = authority.verify(token, { audience: "planner" });
    expect(verified.authority).toStrictEqual({
      agentId: "planner",
      scopes: ["flights:*", "hotels:book"],
      maxAmount: { amount: 50_000, currency: "EUR" },
      tools: ["payments.*", "search"],
      expiresAt: T0 + 900_000,
      depth: 3,
    });
    expect(verified.id).toBe(verified.chain[0]!.id);
    expect(verified.chain).toHaveLength(1);
    expect(verified.chain[0]).toMatchObject({ issuedAt: T0, audience: "planner" });
    expect(verified.chain[0]).not.toHaveProperty("nextKey");
    expect(verified.sealed).toBe(false);
  });

  it("gives every token a fresh id", () => {
    expect(authority.verify(mintBasic()).id).not.toBe(authority.verify(mintBasic()).id);
  });

  it("publishes a JWK that verifyToken accepts", () => {
    const jwk = authority.publicJwk();
    expect(jwk).toMatchObject({ kty: "OKP", crv: "Ed25519", alg: "EdDSA" });
    expect(jwk).not.toHaveProperty("d");
    expect(jwk.kid).toBe(keyId(publicKeys.root));
    const token = attenuate(mintBasic(), { scopes: ["flights:book"], audience: "planner/booker" }, { now: T0 });
    expect(verifyToken(token, jwk, { audience: "planner/booker", now: T0 }).authority.scopes).toEqual(["flights:book"]);
    const { kid: _kid, ...bare } = jwk;
    expect(verifyToken(token, bare, { now: T0 }).authority.agentId).toBe("planner/booker");
  });

  it("uses the RFC 7638 thumbprint as key id", () => {
    // RFC 8037 appendix A.3: the thumbprint of its example Ed25519 key.
    const example = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" }, format: "jwk" });
    expect(keyId(example)).toBe("kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
  });

  it("refuses configurations that cannot work", () => {
    const other = generateKeyPairSync("ed25519");
    const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 });
    expect(() => createTokenAuthority({ rootPrivateKey: other.privateKey, rootPublicKey: publicKeys.root })).toThrow(ConfigError);
    expect(() => createTokenAuthority({ rootPublicKey: rsa.publicKey })).toThrow(ConfigError);
    expect(() => createTokenAuthority({ rootPublicKey: publicKeys.root }).mint({ agentId: "a", scopes: [], ttl: 1000 })).toThrow(ConfigError);
    expect(() => verifyToken(mintBasic(), { kty: "OKP", crv: "Ed25519", x: "not a key" })).toThrow(ConfigError);
  });

  it("validates mint input", () => {
    const bad = [
      { agentId: "a", scopes: ["x"], ttl: "soon" },
      { agentId: "a", scopes: ["x"], ttl: 0 },
      { agentId: "a", scopes: ["x"], ttl: "1h", depth: -1 },
      { agentId: "a", scopes: ["x"], ttl: "1h", depth: 1.5 },
      { agentId: "", scopes: ["x"], ttl: "1h" },
      { agentId: "a", scopes: ["has space"], ttl: "1h" },
      { agentId: "a", scopes: ["x"], ttl: "1h", maxAmount: { amount: 1.5, currency: "EUR" } },
    ];
    for (const input of bad) expect(() => authority.mint(input), JSON.stringify(input)).toThrow(InvalidInputError);
  });

  it("attenuates offline, inheriting what the narrowing leaves out", () => {
    const child = attenuate(mintBasic(), { audience: "planner/booker", issuer: "planner", maxAmount: { amount: 10_000, currency: "EUR" } }, { now: T0 + 1 });
    const verified = authority.verify(child, { audience: "planner/booker" });
    expect(verified.authority).toStrictEqual({
      agentId: "planner/booker",
      scopes: ["flights:*", "hotels:book"],
      maxAmount: { amount: 10_000, currency: "EUR" },
      tools: ["payments.*", "search"],
      expiresAt: T0 + 900_000,
      depth: 2,
    });
    expect(verified.chain.map((b) => b.issuer)).toEqual([undefined, "planner"]);
    expect(verified.id).toBe(authority.verify(child).chain[0]!.id);
  });

  it("attenuate sets expiry from ttl or expiresAt, never later than the parent", () => {
    const parent = mintBasic();
    expect(authority.verify(attenuate(parent, { ttl: "5m" }, { now: T0 })).expiresAt).toBe(T0 + 300_000);
    expect(authority.verify(attenuate(parent, { expiresAt: T0 + 1000 }, { now: T0 })).expiresAt).toBe(T0 + 1000);
    expect(outcome(() => attenuate(parent, { ttl: "1h" }, { now: T0 }))).toBe("widened");
    expect(() => attenuate(parent, { ttl: "1m", expiresAt: T0 + 1 }, { now: T0 })).toThrow(InvalidInputError);
  });

  it("attenuate refuses every kind of widening", () => {
    const parent = mintBasic();
    const widenings: Narrowing[] = [
      { scopes: ["cars:rent"] },
      { scopes: ["*"] },
      { maxAmount: { amount: 50_001, currency: "EUR" } },
      { maxAmount: { amount: 1, currency: "USD" } },
      { tools: ["deploy"] },
      { depth: 3 },
    ];
    for (const narrowing of widenings) expect(outcome(() => attenuate(parent, narrowing, { now: T0 })), JSON.stringify(narrowing)).toBe("widened");
    const converter = new CurrencyConverter({ USD: { EUR: "0.92" } });
    expect(outcome(() => attenuate(parent, { maxAmount: { amount: 54_000, currency: "USD" } }, { now: T0, currency: converter }))).toBe("ok");
    expect(outcome(() => attenuate(parent, { maxAmount: { amount: 55_000, currency: "USD" } }, { now: T0, currency: converter }))).toBe("widened");
  });

  it("stops at depth 0 with a message about depth", () => {
    let token = authority.mint({ agentId: "a", scopes: ["x:*"], ttl: "1h", depth: 2 });
    token = attenuate(token, {}, { now: T0 });
    token = attenuate(token, {}, { now: T0 });
    expect(authority.verify(token).authority.depth).toBe(0);
    expect(() => attenuate(token, {}, { now: T0 })).toThrow(/depth/);
    expect(outcome(() => attenuate(token, {}, { now: T0 }))).toBe("widened");
  });

  it("a child can skip depth levels", () => {
    const token = attenuate(mintBasic(), { depth: 0 }, { now: T0 });
    expect(authority.verify(token).authority.depth).toBe(0);
  });

  it("seals: still verifies, can no longer be attenuated, sealing twice changes nothing", () => {
    const sealed = seal(attenuate(mintBasic(), { scopes: ["flights:book"] }, { now: T0 }));
    const verified = authority.verify(sealed);
    expect(verified.sealed).toBe(true);
    expect(verified.authority.scopes).toEqual(["flights:book"]);
    expect(outcome(() => attenuate(sealed, { scopes: ["flights:book"] }))).toBe("sealed");
    expect(seal(sealed)).toBe(sealed);
    expect(decode(sealed).proof).not.toHaveProperty("key");
  });

  it("inspects without verifying", () => {
    const token = attenuate(mintBasic(), { audience: "planner/booker" }, { now: T0 });
    const wire = decode(token);
    wire.blocks[1]!.sig = wire.blocks[0]!.sig;
    const tampered = encode(wire);
    expect(outcome(() => authority.verify(tampered))).toBe("bad_signature");
    const inspection = authority.inspect(tampered);
    expect(inspection).toMatchObject({ rootKeyId: keyId(publicKeys.root), sealed: false });
    expect(inspection.chain.map((b) => b.audience)).toEqual(["planner", "planner/booker"]);
    expect(inspectToken(tampered)).toStrictEqual(inspection);
    expect(outcome(() => inspectToken("wdn1.xyz"))).toBe("malformed");
    expect(outcome(() => inspectToken(42 as unknown as string))).toBe("malformed");
  });

  it("passes the root's issue time and every addressed agent to isHalted", () => {
    const seen: HaltInfo[] = [];
    const watcher = createTokenAuthority({ rootPublicKey: publicKeys.root, now: () => T0, isHalted: (info) => (seen.push(info), false) });
    watcher.verify(attenuate(attenuate(mintBasic(), { audience: "planner/booker" }, { now: T0 + 5 }), { scopes: ["flights:book"] }, { now: T0 + 6 }));
    expect(seen).toEqual([
      { agentId: "planner", issuedAt: T0 },
      { agentId: "planner/booker", issuedAt: T0 },
    ]);
  });

  it("uses the authority's clock unless verify is given one", () => {
    const token = mintBasic();
    const later = createTokenAuthority({ rootPublicKey: publicKeys.root, now: () => T0 + 900_000 });
    expect(outcome(() => later.verify(token))).toBe("expired");
    expect(outcome(() => later.verify(token, { now: T0 }))).toBe("ok");
  });

  it("rejects an oversized token before decoding it", () => {
    expect(outcome(() => verifyToken(`wdn1.${"A".repeat(70_000)}`, publicKeys.root))).toBe("malformed");
  });

  it("names the offending block in widening errors", () => {
    const c = vectors.cases.find((v) => v.name === "child widens tools")!;
    expect(() => verifyToken(c.token, publicKeys.root, { now: vectors.now })).toThrow(/block 2 widens tools: "search"/);
  });
});

describe("authority questions", () => {
  const authority: Authority = {
    agentId: "booker",
    scopes: ["flights:*", "hotels:book"],
    maxAmount: { amount: 50_000, currency: "EUR" },
    tools: ["payments.*", "read_?"],
    expiresAt: 0,
    depth: 0,
  };

  it("hasPermission", () => {
    expect(hasPermission(authority, "flights:book")).toBe(true);
    expect(hasPermission(authority, "flights:book:intl")).toBe(true);
    expect(hasPermission(authority, "flights:*")).toBe(true);
    expect(hasPermission(authority, "hotels:book")).toBe(true);
    expect(hasPermission(authority, "hotels:cancel")).toBe(false);
    expect(hasPermission(authority, "hotels:*")).toBe(false);
    expect(hasPermission(authority, "flights")).toBe(false);
    expect(hasPermission(authority, "*")).toBe(false);
    expect(hasPermission({ ...authority, scopes: ["*"] }, "anything:at:all")).toBe(true);
    expect(hasPermission({ ...authority, scopes: [] }, "flights:book")).toBe(false);
  });

  it("withinAmount", () => {
    const converter = new CurrencyConverter({ USD: { EUR: "0.92" } });
    expect(withinAmount(authority, { amount: 50_000, currency: "EUR" })).toBe(true);
    expect(withinAmount(authority, { amount: 50_001, currency: "EUR" })).toBe(false);
    expect(withinAmount(authority, { amount: 100, currency: "USD" })).toBe(false);
    expect(withinAmount(authority, { amount: 54_000, currency: "USD" }, converter)).toBe(true);
    expect(withinAmount(authority, { amount: 55_000, currency: "USD" }, converter)).toBe(false);
    expect(withinAmount(authority, { amount: 1, currency: "GBP" }, converter)).toBe(false);
    const { maxAmount: _cap, ...uncapped } = authority;
    expect(withinAmount(uncapped, { amount: 10 ** 12, currency: "JPY" })).toBe(true);
  });

  it("toolAllowed", () => {
    expect(toolAllowed(authority, "payments.refund")).toBe(true);
    expect(toolAllowed(authority, "payments.refund.partial")).toBe(true);
    expect(toolAllowed(authority, "read_x")).toBe(true);
    expect(toolAllowed(authority, "read_xy")).toBe(false);
    expect(toolAllowed(authority, "deploy")).toBe(false);
    const { tools: _tools, ...anyTool } = authority;
    expect(toolAllowed(anyTool, "deploy")).toBe(true);
  });
});

describe("scopes and tool globs", () => {
  it("scope patterns", () => {
    expect(scopeMatches("flights:*", "flights:book")).toBe(true);
    expect(scopeMatches("flights:*", "flights:book:intl")).toBe(true);
    expect(scopeMatches("flights:*", "flightsbook")).toBe(false);
    expect(scopeMatches("*", "x")).toBe(true);
    expect(scopeMatches("flights:book", "flights:book")).toBe(true);
    expect(scopeMatches("flights:book", "flights:book:intl")).toBe(false);
    expect(scopeMatches("fli*", "flights")).toBe(false);
  });

  it("scopeCovered", () => {
    expect(scopeCovered("flights:book", ["flights:*"])).toBe(true);
    expect(scopeCovered("flights:*", ["flights:book"])).toBe(false);
    expect(scopeCovered("flights:book:*", ["flights:*"])).toBe(true);
    expect(scopeCovered("flights:*", ["flights:*"])).toBe(true);
    expect(scopeCovered("flights:*", ["flights:book:*"])).toBe(false);
    expect(scopeCovered("*", ["flights:*", "hotels:*"])).toBe(false);
    expect(scopeCovered("*", ["*"])).toBe(true);
    expect(scopeCovered("hotels:book", ["flights:*", "hotels:book"])).toBe(true);
    expect(scopeCovered("x", [])).toBe(false);
  });

  it("tool globs", () => {
    expect(toolMatches("payments.*", "payments.refund")).toBe(true);
    expect(toolMatches("payments.*", "payment.refund")).toBe(false);
    expect(toolMatches("write_*", "write_file")).toBe(true);
    expect(toolMatches("*_file", "write_file")).toBe(true);
    expect(toolMatches("a?c", "abc")).toBe(true);
    expect(toolMatches("a?c", "ac")).toBe(false);
    expect(toolGlobCovers("payments.*", "payments.refund")).toBe(true);
    expect(toolGlobCovers("payments.*", "payments.re*")).toBe(true);
    expect(toolGlobCovers("payments.refund", "payments.*")).toBe(false);
    expect(toolGlobCovers("*", "anything*")).toBe(true);
    expect(toolGlobCovers("a*", "*")).toBe(false);
    expect(toolGlobCovers("a?c", "abc")).toBe(true);
    expect(toolGlobCovers("a?c", "a?c")).toBe(true);
    expect(toolGlobCovers("a?c", "a*c")).toBe(false);
    expect(toolGlobCovers("*ab*", "a*b")).toBe(false);
    expect(toolGlobCovers("a*a*", "a*a")).toBe(true);
    expect(toolCovered("book_flight", ["payments.*", "book_*"])).toBe(true);
    expect(toolCovered("search", ["payments.*", "book_*"])).toBe(false);
  });

  it("globs with many stars answer without exponential backtracking (a regression would hang this test)", () => {
    expect(toolGlobCovers(`${"*a".repeat(30)}b`, "a".repeat(200))).toBe(false);
  });
});

describe("parseDuration", () => {
  it("parses units and milliseconds", () => {
    expect(parseDuration("15m")).toBe(900_000);
    expect(parseDuration("1h")).toBe(3_600_000);
    expect(parseDuration("7d")).toBe(604_800_000);
    expect(parseDuration("30s")).toBe(30_000);
    expect(parseDuration("500ms")).toBe(500);
    expect(parseDuration(1234)).toBe(1234);
  });

  it("refuses what is not a duration", () => {
    for (const bad of ["", "soon", "15", "1w", "-1h", Number.NaN, -5]) expect(() => parseDuration(bad), String(bad)).toThrow();
  });
});
