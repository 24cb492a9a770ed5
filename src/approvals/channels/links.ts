import { createHmac, randomBytes } from "node:crypto";
import { ConfigError, TokenError } from "../../errors.js";
import { safeEqual } from "./signing.js";

/**
 * What a one-time approval link grants: deciding one approval of one organization, until `exp`.
 * @example
 * import type { ApprovalLinkClaims } from "agent-warden";
 * const forWhom = (claims: ApprovalLinkClaims) => claims.to ?? "anyone holding the link";
 */
export interface ApprovalLinkClaims {
  /** The link's own id (single use is per link). */
  id: string;
  org: string;
  approvalId: string;
  /** Expiry, ms since the epoch. */
  exp: number;
  /** Whom the link was issued to; recorded as the reviewer. */
  to?: string | undefined;
}

/**
 * Signs and checks one-time approval links: `<base64url claims>.<base64url HMAC-SHA256>`; the
 * control plane serves them at `/approval-links/<token>`.
 * @internal
 */
export class ApprovalLinkSigner {
  readonly #key: Buffer;

  constructor(secret: string) {
    if (Buffer.byteLength(secret) < 32) throw new ConfigError("an approval link secret has at least 32 characters");
    this.#key = Buffer.from(secret);
  }

  sign(claims: Omit<ApprovalLinkClaims, "id">): string {
    const body = Buffer.from(JSON.stringify({ id: randomBytes(12).toString("base64url"), ...claims })).toString("base64url");
    return `${body}.${this.#mac(body)}`;
  }

  /** The claims of a genuine, unexpired link; `TokenError` otherwise. */
  verify(token: string, now = Date.now()): ApprovalLinkClaims {
    const [body, mac, extra] = token.split(".");
    if (body === undefined || mac === undefined || extra !== undefined || !safeEqual(this.#mac(body), mac)) throw new TokenError("bad_signature", "this approval link is not genuine");
    let claims: ApprovalLinkClaims;
    try {
      claims = JSON.parse(Buffer.from(body, "base64url").toString("utf8")) as ApprovalLinkClaims;
    } catch {
      throw new TokenError("bad_signature", "this approval link is not genuine");
    }
    if (typeof claims.exp !== "number" || claims.exp <= now) throw new TokenError("expired", "this approval link has expired");
    return claims;
  }

  #mac(body: string): string {
    return createHmac("sha256", this.#key).update(`warden-approval-link.${body}`).digest("base64url");
  }
}
