import type { createPublicKey } from "node:crypto";

/**
 * A JSON Web Key (RFC 7517) as Warden reads and publishes it, typed here rather than taken from
 * `@types/node`, whose `node:crypto` export of it comes and goes between majors: declarations that use
 * this compile against any of them.
 * @example
 * import type { Jwk } from "agent-warden";
 * const jwk: Jwk = warden.tokens.publicJwk();
 * console.log(jwk.kty, jwk.crv, jwk.x);
 */
export interface Jwk {
  kty?: string;
  crv?: string;
  x?: string;
  y?: string;
  d?: string;
  n?: string;
  e?: string;
  p?: string;
  q?: string;
  dp?: string;
  dq?: string;
  qi?: string;
  k?: string;
  kid?: string;
  alg?: string;
  use?: string;
  key_ops?: string[];
  ext?: boolean;
  [parameter: string]: unknown;
}

/** Whatever `createPublicKey` takes as a JWK in the installed `@types/node`, named without importing it. */
type NodeJwkInput = Extract<Parameters<typeof createPublicKey>[0], { format: "jwk" }>["key"];

/** @internal For `createPublicKey({ key, format: "jwk" })`, whose parameter type is Node's own. */
export const nodeJwk = (jwk: Jwk): NodeJwkInput => jwk as NodeJwkInput;
