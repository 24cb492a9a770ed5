import { createPublicKey, type KeyObject } from "node:crypto";
import { nodeJwk, type Jwk } from "./jwk.js";
import { ConfigError, InvalidInputError, TokenError } from "../errors.js";
import type { SigningKey } from "../ledger/keys.js";
import type { CurrencyConverter } from "../money.js";
import type { SqliteStore } from "../store/sqlite-store.js";
import {
  attenuate,
  createTokenAuthority,
  inspectToken,
  seal,
  type HaltInfo,
  type MintInput,
  type Narrowing,
  type TokenAuthority,
  type TokenInspection,
  type VerifiedToken,
  type VerifyOptions,
} from "./token.js";

/** @internal */
export interface TokensContext {
  store: SqliteStore;
  org: string;
  /** The organization's key pair; absent in remote mode, where the control plane holds it and only its public half is known. */
  key: SigningKey | undefined;
  converter: CurrencyConverter;
  isHalted: (info: HaltInfo) => boolean;
  onRevoke: (tokenId: string, reason: string | undefined, actor: string | undefined) => void;
  /** Throws `HaltedError` when the client, or an agent the new token is for or comes from, is halted: a halted party mints nothing. */
  refuseIfHalted?: ((agentIds: ReadonlyArray<string | undefined>) => void) | undefined;
}

/**
 * Delegation tokens of this organization, reached as `warden.tokens`: mint, attenuate offline, seal,
 * verify, revoke, so an agent can hand a sub-agent less authority than it holds.
 * @example
 * import type { Tokens } from "agent-warden";
 * const tokens: Tokens = warden.tokens;
 * const token = tokens.mint({ agentId: "travel-agent", scopes: ["flights:*"], ttl: "1h", maxAmount: { amount: 50000, currency: "EUR" } });
 * const child = tokens.attenuate(token, { audience: "booking-agent", scopes: ["flights:book"], maxAmount: { amount: 20000, currency: "EUR" } });
 */
export class Tokens {
  readonly #ctx: TokensContext;
  #authority: TokenAuthority | undefined;
  #publicKey: KeyObject | undefined;

  /** @internal */
  constructor(ctx: TokensContext) {
    this.#ctx = ctx;
    if (ctx.key) this.#use(ctx.key.publicKey, ctx.key.privateKey);
  }

  /**
   * @internal Remote mode: the organization's public key, as the control plane publishes it. Tokens
   * verify against it; minting happens on the control plane (`POST /v1/tokens`, `warden token mint --url`).
   */
  useOrganizationKey(jwk: Jwk): void {
    const publicKey = createPublicKey({ key: nodeJwk(jwk), format: "jwk" });
    if (this.#publicKey?.equals(publicKey)) return;
    this.#use(publicKey, undefined);
  }

  /** Mints a root token signed by the organization's key. */
  mint(input: MintInput): string {
    if (!this.#ctx.key) throw new ConfigError("this client has no organization key: in remote mode tokens are minted by the control plane (POST /v1/tokens or `warden token mint` on its host)");
    this.#ctx.refuseIfHalted?.([input.agentId, input.issuer]);
    return this.#authority!.mint(input);
  }

  /** Appends a narrower block; needs no key but the one the token carries. */
  attenuate(token: string, narrowing: Narrowing): string {
    if (this.#ctx.refuseIfHalted) {
      let holders: Array<string | undefined> = [];
      try {
        holders = inspectToken(token).chain.map((block) => block.audience);
      } catch {
        // A malformed token fails in attenuate itself.
      }
      this.#ctx.refuseIfHalted([...holders, narrowing.audience, narrowing.issuer]);
    }
    return attenuate(token, narrowing, { currency: this.#ctx.converter });
  }

  /** Drops the carried key: the token still verifies but cannot be attenuated again. */
  seal(token: string): string {
    return seal(token);
  }

  /** Verifies signatures, narrowing, expiry, audience, revocation and halts. Throws `TokenError`. */
  verify(token: string, options?: VerifyOptions): VerifiedToken {
    // Fail closed: without the organization's key no token verifies.
    if (!this.#authority) throw new TokenError("wrong_root_key", "the organization's key is not known yet (remote mode: not synced from the control plane)");
    return this.#authority.verify(token, options);
  }

  /** Decodes a token for display, without verifying it. */
  inspect(token: string): TokenInspection {
    return inspectToken(token);
  }

  /** Revokes a token (by its id, or any block id): it and every token derived from it stop verifying. */
  revoke(tokenId: string, options: { reason?: string | undefined; actor?: string | undefined } = {}): void {
    if (!tokenId) throw new InvalidInputError("revoke needs a token id");
    this.#ctx.store.write("INSERT OR IGNORE INTO revoked_tokens (org, id, reason, revoked_at) VALUES (?,?,?,?)", [this.#ctx.org, tokenId, options.reason ?? null, Date.now()]);
    this.#ctx.onRevoke(tokenId, options.reason, options.actor);
    this.#ctx.store.flush();
  }

  /** @internal A revocation made elsewhere (the control plane): kept locally, not recorded again. */
  noteRevoked(tokenId: string, reason: string | undefined): void {
    this.#ctx.store.write("INSERT OR IGNORE INTO revoked_tokens (org, id, reason, revoked_at) VALUES (?,?,?,?)", [this.#ctx.org, tokenId, reason ?? null, Date.now()]);
    this.#ctx.store.flush();
  }

  /** True if the id (of a token or one of its blocks) was revoked. */
  isRevoked(id: string): boolean {
    return this.#ctx.store.peek("SELECT 1 AS revoked FROM revoked_tokens WHERE org = ? AND id = ?", this.#ctx.org, id) !== undefined;
  }

  /** The organization's public key as a JWK: all a service needs to verify tokens. */
  publicJwk(): Jwk & { kid: string } {
    if (!this.#authority) throw new ConfigError("the organization's key is not known yet (remote mode: not synced from the control plane)");
    return this.#authority.publicJwk();
  }

  #use(publicKey: KeyObject, privateKey: KeyObject | undefined): void {
    this.#publicKey = publicKey;
    this.#authority = createTokenAuthority({
      rootPrivateKey: privateKey,
      rootPublicKey: publicKey,
      currency: this.#ctx.converter,
      isRevoked: (id) => this.isRevoked(id),
      isHalted: this.#ctx.isHalted,
    });
  }
}

/** Re-checks what can change after a token verified: revocation, halts, expiry. */
export function stillValid(tokens: Tokens, verified: VerifiedToken, isHalted: (info: HaltInfo) => boolean, now: number): TokenError | undefined {
  if (now >= verified.expiresAt) return new TokenError("expired", `token ${verified.id} expired at ${new Date(verified.expiresAt).toISOString()}`);
  for (const block of verified.chain) if (tokens.isRevoked(block.id)) return new TokenError("revoked", `token ${block.id} was revoked`);
  // Every agent the chain was addressed to, as verification asks: halting a delegating agent stops what it delegated.
  const agents = new Set([verified.authority.agentId, ...verified.chain.map((block) => block.audience).filter((a) => a !== undefined)]);
  for (const agentId of agents) if (isHalted({ agentId, issuedAt: verified.chain[0]!.issuedAt })) return new TokenError("halted", "a halt since this token was issued invalidates it");
  return undefined;
}
