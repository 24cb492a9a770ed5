// Delegation tokens: a chain of Ed25519-signed blocks in the manner of Biscuit.
//
// Block 0 is signed by the organization's root key. Every block names a fresh `nextKey`; the next
// block is signed by its private half, and the token carries the private half of the last one (the
// proof) so whoever holds the token can append a narrower block offline. Each signature covers the
// block and the previous block's signature, so blocks cannot be reordered, dropped or transplanted.
// Verification recomputes the effective authority as the intersection of all blocks and rejects any
// block that claims more than its parent: a child's authority is verified, never trusted.
//
// Everything here is pure: no store, no globals; revocation, halts and the clock come in as options.
import {
  KeyObject,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  hash,
  randomBytes,
  sign,
  verify,
} from "node:crypto";
import { nodeJwk, type Jwk } from "./jwk.js";
import { ConfigError, InvalidInputError, TokenError } from "../errors.js";
import { parseDuration } from "../internal/duration.js";
import type { CurrencyConverter, Money } from "../money.js";
import { isWithinAgent } from "../policy/identity.js";
import {
  MAX_TOKEN_LENGTH,
  TOKEN_PREFIX,
  tokenSchemas,
  type BlockContent,
  type RootBlockContent,
  type SignedBlock,
  type WireToken,
} from "./schema.js";
import { scopeCovered, toolMatches, uncoveredScope, uncoveredTool } from "./scopes.js";

export { parseDuration };

/**
 * What a token lets its holder do, once every block has been applied: what a service checks a request against.
 * @example
 * import { verifyToken, type Authority } from "agent-warden";
 * const { scopes, maxAmount, expiresAt }: Authority = verifyToken(token, organizationJwk).authority;
 */
export interface Authority {
  /** The effective audience: the agent the token is for (set by the last block that names one). */
  agentId: string | undefined;
  scopes: string[];
  /** Largest amount per operation; absent ⇒ no monetary cap. */
  maxAmount?: Money | undefined;
  /** Allowed tool names or globs; absent ⇒ any tool. */
  tools?: string[] | undefined;
  expiresAt: number;
  /** Delegation steps still allowed. */
  depth: number;
}

/**
 * One block of a token's chain as a reader sees it (keys left out), to show who delegated what to whom.
 * @example
 * import { inspectToken, type TokenBlock } from "agent-warden";
 * const audiences = inspectToken(token).chain.map((block: TokenBlock) => block.audience);
 */
export type TokenBlock = Omit<BlockContent, "nextKey">;

/**
 * A token whose signatures, narrowing, expiry and audience all checked out, with the authority it grants.
 * @example
 * import type { VerifiedToken } from "agent-warden";
 * const verified: VerifiedToken = warden.tokens.verify(token, { audience: "booking-agent" });
 */
export interface VerifiedToken {
  /** The root block's id: revoking it revokes every token derived from it. */
  id: string;
  authority: Authority;
  chain: TokenBlock[];
  expiresAt: number;
  sealed: boolean;
}

/**
 * A token decoded without verifying it, for display and debugging only: nothing in it is trusted.
 * @example
 * import type { TokenInspection } from "agent-warden";
 * const info: TokenInspection = warden.tokens.inspect(token);
 * console.log(info.id, info.sealed, info.chain.length);
 */
export interface TokenInspection {
  id: string;
  /** Thumbprint of the root key the token claims to be signed by. */
  rootKeyId: string;
  sealed: boolean;
  chain: TokenBlock[];
}

export interface HaltInfo {
  agentId: string | undefined;
  issuedAt: number;
}

export interface VerifyOptions {
  /** The agent presenting the token; a token for another agent fails with `wrong_audience`. */
  audience?: string | undefined;
  /** Current time in ms since the epoch. */
  now?: number | undefined;
}

export interface VerifierOptions {
  /** Called with every block id in the chain; true ⇒ `revoked`. */
  isRevoked?: ((id: string) => boolean) | undefined;
  /** True ⇒ `halted`. Called once per agent the chain is addressed to. */
  isHalted?: ((info: HaltInfo) => boolean) | undefined;
  /** Compares caps in different currencies; without it a cap in another currency counts as widening. */
  currency?: CurrencyConverter | undefined;
}

export type VerifyTokenOptions = VerifyOptions & VerifierOptions;

/**
 * The authority of a new root token: what `tokens.mint` grants an agent.
 * @example
 * import type { MintInput } from "agent-warden";
 * const grant: MintInput = { agentId: "travel-agent", scopes: ["flights:*"], ttl: "1h", maxAmount: { amount: 50000, currency: "EUR" } };
 * const token = warden.tokens.mint(grant);
 */
export interface MintInput {
  agentId: string;
  scopes: string[];
  maxAmount?: Money | undefined;
  /** Lifetime: milliseconds or a duration such as `"15m"`, `"1h"`, `"7d"`. */
  ttl: number | string;
  tools?: string[] | undefined;
  /** Delegation steps allowed below this token. Default 3. */
  depth?: number | undefined;
  issuer?: string | undefined;
  /** The run minting the token; runs acting under it become its children. */
  runId?: string | undefined;
  traceId?: string | undefined;
}

/**
 * What a new block takes away from a token: each restriction may only narrow what the token already grants.
 * @example
 * import type { Narrowing } from "agent-warden";
 * const forBooking: Narrowing = { audience: "booking-agent", scopes: ["flights:book"], ttl: "10m" };
 * const child = warden.tokens.attenuate(token, forBooking);
 */
export interface Narrowing {
  scopes?: string[] | undefined;
  maxAmount?: Money | undefined;
  audience?: string | undefined;
  tools?: string[] | undefined;
  ttl?: number | string | undefined;
  expiresAt?: number | undefined;
  /** Default: the parent's depth minus one. */
  depth?: number | undefined;
  issuer?: string | undefined;
  runId?: string | undefined;
  traceId?: string | undefined;
}

export interface AttenuateOptions {
  currency?: CurrencyConverter | undefined;
  now?: number | undefined;
}

/**
 * Mints and verifies tokens under one root key, without a Warden client or a store: what
 * `createTokenAuthority` returns.
 * @example
 * import { createTokenAuthority, type TokenAuthority } from "agent-warden";
 * const authority: TokenAuthority = createTokenAuthority({ rootPublicKey: publicKey, rootPrivateKey: privateKey });
 * const verified = authority.verify(authority.mint({ agentId: "travel-agent", scopes: ["flights:*"], ttl: "1h" }));
 */
export interface TokenAuthority {
  mint(input: MintInput): string;
  /** Throws TokenError with a stable `reason` when the token does not verify. */
  verify(token: string, options?: VerifyOptions): VerifiedToken;
  /** Decodes without checking signatures (for display); throws TokenError("malformed"). */
  inspect(token: string): TokenInspection;
  /** The root public key as an OKP/Ed25519 JWK, `kid` = RFC 7638 thumbprint. */
  publicJwk(): Jwk & { kid: string };
}

/**
 * The root key pair and the revocation and halt checks of a standalone token authority.
 * @example
 * import { createTokenAuthority, type TokenAuthorityOptions } from "agent-warden";
 * const options: TokenAuthorityOptions = { rootPublicKey: publicKey, isRevoked: (id) => revokedIds.has(id) };
 * const verifier = createTokenAuthority(options);
 */
export interface TokenAuthorityOptions {
  /** Needed only to mint. */
  rootPrivateKey?: KeyObject | undefined;
  rootPublicKey: KeyObject;
  isRevoked?: ((id: string) => boolean) | undefined;
  isHalted?: ((info: HaltInfo) => boolean) | undefined;
  currency?: CurrencyConverter | undefined;
  now?: (() => number) | undefined;
}

export const DEFAULT_DEPTH = 3;

// ---------------------------------------------------------------------------------------------
// Authority

/**
 * Creates a token authority over an Ed25519 root key, for minting or verifying tokens in a service
 * that runs no Warden client.
 * @example
 * import { generateKeyPairSync } from "node:crypto";
 * import { createTokenAuthority } from "agent-warden";
 * const { publicKey, privateKey } = generateKeyPairSync("ed25519");
 * const token = createTokenAuthority({ rootPublicKey: publicKey, rootPrivateKey: privateKey }).mint({ agentId: "travel-agent", scopes: ["flights:*"], ttl: "1h" });
 */
export function createTokenAuthority(options: TokenAuthorityOptions): TokenAuthority {
  const root = rootKey(options.rootPublicKey);
  const privateKey = options.rootPrivateKey;
  if (privateKey) assertKeyPair(privateKey, root);
  const clock = options.now ?? Date.now;
  return {
    mint(input) {
      if (!privateKey) throw new ConfigError("minting a token needs rootPrivateKey");
      return mintToken(privateKey, root.kid, input, clock());
    },
    verify(token, verifyOptions = {}) {
      const { isRevoked, isHalted, currency } = options;
      return verifyWith(root, token, { isRevoked, isHalted, currency, audience: verifyOptions.audience, now: verifyOptions.now ?? clock() });
    },
    inspect: inspectToken,
    publicJwk() {
      return { ...root.key.export({ format: "jwk" }), kid: root.kid, alg: "EdDSA", use: "sig" };
    },
  };
}

/**
 * Verifies with only the root public key (a KeyObject or a JWK), for services that never mint.
 * Throws `TokenError` with a stable `reason` when the token does not verify.
 * @example
 * import { verifyToken } from "agent-warden";
 * const verified = verifyToken(token, organizationJwk, { audience: "booking-agent" });
 */
export function verifyToken(token: string, rootPublicKey: KeyObject | Jwk, options: VerifyTokenOptions = {}): VerifiedToken {
  return verifyWith(rootKey(rootPublicKey), token, options);
}

/**
 * Decodes a token without checking any signature, to display or debug it; never to authorize.
 * @example
 * import { inspectToken } from "agent-warden";
 * const { id, sealed, chain } = inspectToken(token);
 */
export function inspectToken(token: string): TokenInspection {
  const wire = decodeToken(token);
  const root = wire.blocks[0].content;
  return { id: root.id, rootKeyId: root.kid, sealed: wire.proof.type === "seal", chain: wire.blocks.map((b) => summarize(b.content)) };
}

// ---------------------------------------------------------------------------------------------
// Minting, attenuating, sealing

function mintToken(privateKey: KeyObject, kid: string, input: MintInput, now: number): string {
  const next = freshKey();
  const parsed = tokenSchemas().RootBlockContentSchema.safeParse(
    compact({
      id: newId(),
      kid,
      issuedAt: now,
      nextKey: next.publicKey,
      issuer: input.issuer,
      runId: input.runId,
      traceId: input.traceId,
      audience: input.agentId,
      scopes: input.scopes,
      maxAmount: input.maxAmount,
      tools: input.tools,
      expiresAt: now + lifetime(input.ttl),
      depth: input.depth ?? DEFAULT_DEPTH,
    }),
  );
  if (!parsed.success) throw new InvalidInputError(`invalid token: ${describeIssues(parsed.error.issues)}`);
  const sig = signBlock(privateKey, parsed.data, null);
  return encodeToken({ v: 1, blocks: [{ content: parsed.data, sig }], proof: { type: "key", key: next.seed } });
}

/**
 * Appends a block that narrows the token, with no key but the one the token carries. Throws
 * TokenError("sealed") for a sealed token and TokenError("widened") when the narrowing claims more
 * than the token's current authority (read from the token itself: nothing is verified here).
 * @example
 * import { attenuate } from "agent-warden";
 * const child = attenuate(token, { audience: "booking-agent", scopes: ["flights:book"], ttl: "10m" });
 */
export function attenuate(token: string, narrowing: Narrowing, options: AttenuateOptions = {}): string {
  const wire = decodeToken(token);
  if (wire.proof.type === "seal") throw new TokenError("sealed", "a sealed token cannot be attenuated");
  const parent = effectiveAuthority(wire.blocks, options.currency);
  if (parent.depth === 0) throw new TokenError("widened", "no delegation depth left: the token cannot be attenuated further");
  const now = options.now ?? Date.now();
  const next = freshKey();
  const content = parseNarrowing(narrowing, { id: newId(), issuedAt: now, nextKey: next.publicKey, depth: parent.depth - 1 });
  narrow(parent, content, wire.blocks.length, options.currency);
  const last = lastBlock(wire);
  const sig = signBlock(proofKey(wire.proof.key, last), content, last.sig);
  return encodeToken({ v: 1, blocks: [...wire.blocks, { content, sig }], proof: { type: "key", key: next.seed } });
}

/**
 * Replaces the carried key with a signature over the chain: the token verifies as before but can no
 * longer be attenuated, for handing a token to an agent that must not delegate further.
 * @example
 * import { seal } from "agent-warden";
 * const final = seal(childToken);
 */
export function seal(token: string): string {
  const wire = decodeToken(token);
  if (wire.proof.type === "seal") return token;
  const last = lastBlock(wire);
  const sig = sign(null, sealPayload(last.sig), proofKey(wire.proof.key, last)).toString("base64url");
  return encodeToken({ ...wire, proof: { type: "seal", sig } });
}

function parseNarrowing(narrowing: Narrowing, fixed: { id: string; issuedAt: number; nextKey: string; depth: number }): BlockContent {
  if (narrowing.ttl !== undefined && narrowing.expiresAt !== undefined) throw new InvalidInputError("give either ttl or expiresAt, not both");
  const expiresAt = narrowing.ttl === undefined ? narrowing.expiresAt : fixed.issuedAt + lifetime(narrowing.ttl);
  const parsed = tokenSchemas().BlockContentSchema.safeParse(
    compact({
      ...fixed,
      issuer: narrowing.issuer,
      runId: narrowing.runId,
      traceId: narrowing.traceId,
      audience: narrowing.audience,
      scopes: narrowing.scopes,
      maxAmount: narrowing.maxAmount,
      tools: narrowing.tools,
      expiresAt,
      depth: narrowing.depth ?? fixed.depth,
    }),
  );
  if (!parsed.success) throw new InvalidInputError(`invalid narrowing: ${describeIssues(parsed.error.issues)}`);
  return parsed.data;
}

function lifetime(ttl: number | string): number {
  let ms: number;
  try {
    ms = parseDuration(ttl);
  } catch (error) {
    throw new InvalidInputError(`invalid ttl ${JSON.stringify(ttl)}`, { cause: error });
  }
  if (!Number.isSafeInteger(ms) || ms <= 0) throw new InvalidInputError(`ttl must be a positive whole number of ms, got ${JSON.stringify(ttl)}`);
  return ms;
}

// ---------------------------------------------------------------------------------------------
// Verification

// Tokens whose signatures verified, by root key and exact text: a service sees the same token on every
// request, and Ed25519 is the expensive part. Revocation, halts, expiry and audience are still checked
// on every verification.
const verifiedWires = new Map<string, WireToken>();
const VERIFIED_CACHE_SIZE = 1024;

function verifiedWire(root: RootKey, token: string): WireToken {
  // Checked before the cache: a non-string whose string form is a verified token must not hit it.
  if (typeof token !== "string") throw malformed(`expected a string, got ${token === null ? "null" : typeof token}`);
  const key = `${root.kid}\u0000${token}`;
  let wire = verifiedWires.get(key);
  if (wire === undefined) {
    wire = decodeToken(token);
    checkSignatures(wire, root);
    if (verifiedWires.size >= VERIFIED_CACHE_SIZE) verifiedWires.clear();
    verifiedWires.set(key, wire);
  }
  return wire;
}

function verifyWith(root: RootKey, token: string, options: VerifyTokenOptions): VerifiedToken {
  const wire = verifiedWire(root, token);
  const authority = effectiveAuthority(wire.blocks, options.currency);
  if (options.isRevoked) checkRevocation(wire, options.isRevoked);
  if (options.isHalted) checkHalt(wire, options.isHalted);
  const now = options.now ?? Date.now();
  if (now >= authority.expiresAt) throw new TokenError("expired", `expired at ${new Date(authority.expiresAt).toISOString()}`);
  if (options.audience !== undefined && authority.agentId !== options.audience) {
    throw new TokenError("wrong_audience", `token is for ${JSON.stringify(authority.agentId)}, presented by ${JSON.stringify(options.audience)}`);
  }
  const rootBlock = wire.blocks[0].content;
  return { id: rootBlock.id, authority, chain: wire.blocks.map((b) => summarize(b.content)), expiresAt: authority.expiresAt, sealed: wire.proof.type === "seal" };
}

function checkSignatures(wire: WireToken, root: RootKey): void {
  const [first, ...rest] = wire.blocks;
  // The key id tells a token minted under another root key apart from a forged or damaged one.
  if (first.content.kid !== root.kid) throw new TokenError("wrong_root_key", `signed for root key ${first.content.kid}, expected ${root.kid}`);
  if (!verifySignature(root.key, blockPayload(first.content, null), first.sig)) throw new TokenError("bad_signature", "block 0 signature does not verify");
  let previous: SignedBlock = first;
  rest.forEach((block, i) => {
    if (!verifySignature(previous.content.nextKey, blockPayload(block.content, previous.sig), block.sig)) {
      throw new TokenError("bad_signature", `block ${i + 1} signature does not verify`);
    }
    previous = block;
  });
  checkProof(wire, previous);
}

/**
 * The proof must belong to the last block. Without this check, dropping the last block of a token
 * would leave a valid shorter chain: its holder would regain the parent's wider authority.
 */
function checkProof(wire: WireToken, last: SignedBlock): void {
  if (wire.proof.type === "key") {
    proofKey(wire.proof.key, last);
    return;
  }
  if (!verifySignature(last.content.nextKey, sealPayload(last.sig), wire.proof.sig)) {
    throw new TokenError("bad_signature", "seal signature does not verify");
  }
}

function checkRevocation(wire: WireToken, isRevoked: (id: string) => boolean): void {
  for (const [index, block] of wire.blocks.entries()) {
    if (isRevoked(block.content.id)) throw new TokenError("revoked", `block ${index} (${block.content.id}) is revoked`);
  }
}

/**
 * Asks about every agent the chain was addressed to, so halting a parent agent also stops what it
 * delegated. The root's issuedAt is the only time the organization signed; later blocks' times are
 * chosen by whoever appended them and could be post-dated to slip past a halt.
 */
function checkHalt(wire: WireToken, isHalted: (info: HaltInfo) => boolean): void {
  const issuedAt = wire.blocks[0].content.issuedAt;
  const agents = new Set(wire.blocks.map((b) => b.content.audience).filter((a) => a !== undefined));
  for (const agentId of agents) {
    if (isHalted({ agentId, issuedAt })) throw new TokenError("halted", `agent ${JSON.stringify(agentId)} was halted after this token was issued`);
  }
}

// ---------------------------------------------------------------------------------------------
// Effective authority: the intersection of all blocks, refusing any block that widens

function effectiveAuthority(blocks: WireToken["blocks"], converter: CurrencyConverter | undefined): Authority {
  const [first, ...rest] = blocks;
  let authority = rootAuthority(first.content);
  rest.forEach((block, i) => {
    authority = narrow(authority, block.content, i + 1, converter);
  });
  return authority;
}

function rootAuthority(root: RootBlockContent): Authority {
  return compact({ agentId: root.audience, scopes: root.scopes, maxAmount: root.maxAmount, tools: root.tools, expiresAt: root.expiresAt, depth: root.depth });
}

/** Applies one block to its parent's authority; a block claiming more than the parent is an error, not ignored. */
function narrow(parent: Authority, block: BlockContent, index: number, converter: CurrencyConverter | undefined): Authority {
  const widened = (what: string) => new TokenError("widened", `block ${index} widens ${what}`);
  if (parent.depth === 0) throw widened("depth: it was appended with no delegation depth left");
  const depth = block.depth ?? parent.depth - 1;
  if (depth >= parent.depth) throw widened(`depth: ${depth} is not below ${parent.depth}`);
  const scope = block.scopes && uncoveredScope(block.scopes, parent.scopes);
  if (scope !== undefined) throw widened(`scopes: "${scope}" is not within ${JSON.stringify(parent.scopes)}`);
  const tool = block.tools && parent.tools && uncoveredTool(block.tools, parent.tools);
  if (tool !== undefined) throw widened(`tools: "${tool}" is not within ${JSON.stringify(parent.tools)}`);
  if (block.expiresAt !== undefined && block.expiresAt > parent.expiresAt) throw widened("expiry: it outlives its parent");
  // Who the token is for is part of its authority: policies and rate limits are written per agent.
  if (block.audience !== undefined && parent.agentId !== undefined && !isWithinAgent(block.audience, parent.agentId)) {
    throw widened(`audience: ${JSON.stringify(block.audience)} is neither ${JSON.stringify(parent.agentId)} nor a sub-identity of it (${JSON.stringify(`${parent.agentId}/…`)})`);
  }
  const amountProblem = block.maxAmount && parent.maxAmount && amountExceeds(block.maxAmount, parent.maxAmount, converter);
  if (amountProblem) throw widened(`maxAmount: ${amountProblem}`);
  return compact({
    agentId: block.audience ?? parent.agentId,
    scopes: block.scopes ?? parent.scopes,
    maxAmount: block.maxAmount ?? parent.maxAmount,
    tools: block.tools ?? parent.tools,
    expiresAt: block.expiresAt ?? parent.expiresAt,
    depth,
  });
}

/** Why `child` is not within `cap`, or undefined when it is. Unknown rates count as exceeding (fail closed). */
function amountExceeds(child: Money, cap: Money, converter: CurrencyConverter | undefined): string | undefined {
  const shown = `${child.amount} ${child.currency} exceeds ${cap.amount} ${cap.currency}`;
  if (child.currency === cap.currency) return child.amount > cap.amount ? shown : undefined;
  if (!converter) return `${child.currency} cannot be compared with ${cap.currency} without a currency converter`;
  try {
    return converter.within(child, cap) ? undefined : shown;
  } catch {
    return `no exchange rate from ${child.currency} to ${cap.currency}`;
  }
}

// ---------------------------------------------------------------------------------------------
// Questions answered from a verified authority, with no round trip

/**
 * True when the token grants `permission` (a pattern such as `flights:*` asks for all of it), checked
 * offline from a verified authority.
 * @example
 * import { hasPermission } from "agent-warden";
 * if (!hasPermission(verified.authority, "flights:book")) throw new Error("not allowed to book");
 */
export function hasPermission(authority: Authority, permission: string): boolean {
  return scopeCovered(permission, authority.scopes);
}

/**
 * True when `money` fits the token's cap, for checking an amount before acting on it. An amount that
 * cannot be converted does not fit.
 * @example
 * import { withinAmount } from "agent-warden";
 * withinAmount(verified.authority, { amount: 18000, currency: "EUR" });
 */
export function withinAmount(authority: Authority, money: Money, converter?: CurrencyConverter): boolean {
  return authority.maxAmount === undefined || amountExceeds(money, authority.maxAmount, converter) === undefined;
}

/**
 * Why a verified token does not cover `permission` (scope) with an optional amount (checked against
 * its cap, converted between currencies), or undefined when it does. One rule for every place a token
 * is enforced: tool calls, `authorize`, the Express guard.
 * @example
 * import { tokenDenial } from "agent-warden";
 * const why = tokenDenial(verified, { permission: "refunds:create", amount: 2800, currency: "EUR" });
 */
export function tokenDenial(token: VerifiedToken, need: { permission?: string | undefined; amount?: unknown; currency?: unknown }, converter?: CurrencyConverter): string | undefined {
  const authority = token.authority;
  if (need.permission !== undefined && !hasPermission(authority, need.permission)) return `token ${token.id} does not grant "${need.permission}"`;
  if (authority.maxAmount === undefined || need.amount === undefined) return undefined;
  const { amount } = need;
  if (typeof amount !== "number" || !Number.isSafeInteger(amount) || amount < 0) return `amount ${JSON.stringify(amount)} is not an integer in minor units`;
  const currency = typeof need.currency === "string" ? need.currency : authority.maxAmount.currency;
  try {
    if (withinAmount(authority, { amount, currency }, converter)) return undefined;
  } catch (error) {
    return (error as Error).message;
  }
  return `amount ${amount} ${currency} exceeds the token's cap of ${authority.maxAmount.amount} ${authority.maxAmount.currency}`;
}

/**
 * True when the token allows calling the tool named `toolName`, for filtering the tools offered to an agent.
 * @example
 * import { toolAllowed } from "agent-warden";
 * const offered = tools.filter((tool) => toolAllowed(verified.authority, tool.name));
 */
export function toolAllowed(authority: Authority, toolName: string): boolean {
  return authority.tools === undefined || authority.tools.some((pattern) => toolMatches(pattern, toolName));
}

// ---------------------------------------------------------------------------------------------
// Wire encoding

function encodeToken(wire: WireToken): string {
  return TOKEN_PREFIX + Buffer.from(canonicalJson(wire)).toString("base64url");
}

/**
 * Exactly one encoding of a token decodes: strict base64url (no padding, no spare bits) of the
 * canonical JSON of a schema-valid token. Anything else (whitespace, reordered or duplicate keys,
 * escaped characters, unknown fields) is malformed, so a token's text identifies it: a cache, a
 * revocation list or a log can key on it.
 */
function decodeToken(token: string): WireToken {
  if (typeof token !== "string") throw malformed(`expected a string, got ${token === null ? "null" : typeof token}`);
  if (token.length === 0) throw malformed("empty token");
  if (token.length > MAX_TOKEN_LENGTH) throw malformed(`longer than ${MAX_TOKEN_LENGTH} characters`);
  if (!token.startsWith(TOKEN_PREFIX)) throw malformed(`expected the prefix "${TOKEN_PREFIX}"`);
  const body = token.slice(TOKEN_PREFIX.length);
  if (!/^[A-Za-z0-9_-]*$/.test(body) || body.length % 4 === 1) throw malformed("not base64url");
  const bytes = Buffer.from(body, "base64url");
  // Re-encoding gives back the text only when the spare bits of the last character are zero.
  if (bytes.toString("base64url") !== body) throw malformed("not canonical base64url (spare bits set)");
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (error) {
    throw malformed("not UTF-8 JSON (truncated?)", error);
  }
  const parsed = tokenSchemas().WireTokenSchema.safeParse(json);
  if (!parsed.success) throw malformed(describeIssues(parsed.error.issues));
  if (!Buffer.from(canonicalJson(parsed.data)).equals(bytes)) throw malformed("not the canonical encoding (whitespace, key order, duplicate keys or escapes differ)");
  return parsed.data;
}

function malformed(message: string, cause?: unknown): TokenError {
  return new TokenError("malformed", message, cause === undefined ? undefined : { cause });
}

function describeIssues(issues: ReadonlyArray<{ path: PropertyKey[]; message: string }>): string {
  return issues
    .slice(0, 3)
    .map((issue) => (issue.path.length ? `${issue.path.map(String).join(".")}: ${issue.message}` : issue.message))
    .join("; ");
}

function summarize(content: BlockContent | RootBlockContent): TokenBlock {
  return compact({
    id: content.id,
    issuedAt: content.issuedAt,
    issuer: content.issuer,
    audience: content.audience,
    scopes: content.scopes,
    maxAmount: content.maxAmount,
    tools: content.tools,
    expiresAt: content.expiresAt,
    depth: content.depth,
  });
}

function lastBlock(wire: WireToken): SignedBlock {
  return wire.blocks[wire.blocks.length - 1] ?? wire.blocks[0];
}

/** Sorted keys, no whitespace, undefined members left out: one byte string per value, so signatures are reproducible. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item)).join(",")}]`;
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  const record = value as Record<string, unknown>;
  const members = Object.keys(record)
    .filter((key) => record[key] !== undefined)
    .sort()
    .map((key) => `${JSON.stringify(key)}:${canonicalJson(record[key])}`);
  return `{${members.join(",")}}`;
}

/** Drops undefined members so optional fields are absent rather than present-but-undefined. */
function compact<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

// ---------------------------------------------------------------------------------------------
// Signatures and keys

/** What block signatures cover: the block and the previous signature, which chains the blocks together. */
function blockPayload(content: BlockContent | RootBlockContent, previousSig: string | null): Buffer {
  return Buffer.from(canonicalJson({ ctx: "wdn1/block", content, prev: previousSig }));
}

/** What a seal covers: the last block's signature, and through the chaining, every block. */
function sealPayload(lastSig: string): Buffer {
  return Buffer.from(canonicalJson({ ctx: "wdn1/seal", last: lastSig }));
}

function signBlock(key: KeyObject, content: BlockContent | RootBlockContent, previousSig: string | null): string {
  return sign(null, blockPayload(content, previousSig), key).toString("base64url");
}

/** `key` is a KeyObject or a raw public key from a block; a key that does not even import fails like a bad signature. */
function verifySignature(key: KeyObject | string, data: Buffer, sig: string): boolean {
  try {
    return verify(null, data, typeof key === "string" ? publicKeyFromRaw(key) : key, Buffer.from(sig, "base64url"));
  } catch {
    return false;
  }
}

/** The carried private key, after checking it is the one the last block named. */
function proofKey(seed: string, last: SignedBlock): KeyObject {
  const key = privateKeyFromSeed(seed);
  // Importing the seed already derived the public half; the JWK export hands it back at no extra cost.
  if (key.export({ format: "jwk" }).x !== last.content.nextKey) throw new TokenError("bad_signature", "the carried key does not belong to the last block");
  return key;
}

// Fixed DER headers of Ed25519 SubjectPublicKeyInfo and PKCS#8 structures (RFC 8410): the raw
// 32-byte key follows them, which is how keys travel inside a token.
const SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");
const PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

interface RootKey {
  key: KeyObject;
  kid: string;
}

function rootKey(input: KeyObject | Jwk): RootKey {
  let key: KeyObject;
  try {
    key = input instanceof KeyObject ? input : createPublicKey({ key: nodeJwk(input), format: "jwk" });
  } catch (error) {
    throw new ConfigError("root public key is not a valid JWK", { cause: error });
  }
  if (key.asymmetricKeyType !== "ed25519") throw new ConfigError(`root key must be Ed25519, got ${key.asymmetricKeyType ?? key.type}`);
  if (key.type === "private") key = createPublicKey(key);
  return { key, kid: keyId(key) };
}

function assertKeyPair(privateKey: KeyObject, root: RootKey): void {
  if (privateKey.type !== "private" || privateKey.asymmetricKeyType !== "ed25519") throw new ConfigError("rootPrivateKey must be an Ed25519 private key");
  if (keyId(createPublicKey(privateKey)) !== root.kid) throw new ConfigError("rootPrivateKey does not match rootPublicKey");
}

/** RFC 7638 JWK thumbprint: SHA-256 over the required members in lexical order. */
export function keyId(publicKey: KeyObject): string {
  const x = rawPublicKey(publicKey);
  return hash("sha256", `{"crv":"Ed25519","kty":"OKP","x":"${x}"}`, "base64url");
}

function rawPublicKey(key: KeyObject): string {
  return key.export({ format: "der", type: "spki" }).subarray(SPKI_PREFIX.length).toString("base64url");
}

function publicKeyFromRaw(raw: string): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, Buffer.from(raw, "base64url")]), format: "der", type: "spki" });
}

/** A new key pair for the next block, as the raw base64url strings a token carries. */
function freshKey(): { publicKey: string; seed: string } {
  const { x, d } = generateKeyPairSync("ed25519").privateKey.export({ format: "jwk" });
  if (x === undefined || d === undefined) throw new Error("Ed25519 JWK export without x or d");
  return { publicKey: x, seed: d };
}

function privateKeyFromSeed(seed: string): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, Buffer.from(seed, "base64url")]), format: "der", type: "pkcs8" });
}

// Never a leading "-": an id is typed on command lines (`warden token revoke <id>`), where it would read as an option.
function newId(): string {
  for (;;) {
    const id = randomBytes(16).toString("base64url");
    if (id[0] !== "-") return id;
  }
}
