// The wire form of a delegation token: `wdn1.` + base64url(canonical JSON of WireToken).
// Objects are strict: a field this version does not know could be a restriction a newer issuer
// meant to impose, and ignoring it would silently widen the token, so unknown fields are malformed.
import { z } from "zod";
import { once } from "../internal/once.js";
import { MoneySchema } from "../money.js";

export const TOKEN_PREFIX = "wdn1.";
/** Largest delegation depth a root block may grant; bounds the chain and so the cost of verifying it. */
export const MAX_DEPTH = 16;
/** Root block plus one block per delegation step. */
export const MAX_BLOCKS = MAX_DEPTH + 1;
/** Longest encoded token accepted, checked before any decoding work. */
export const MAX_TOKEN_LENGTH = 64 * 1024;

const base64url = (bytes: number) =>
  z
    .string()
    .length(Math.ceil((bytes * 4) / 3))
    .regex(/^[A-Za-z0-9_-]+$/, "base64url");

/** The token schemas, built when a token is first minted, attenuated, sealed or read. */
export const tokenSchemas = once(() => {
  /** A raw 32-byte Ed25519 public key or private seed. */
  const Ed25519KeySchema = base64url(32);
  /** A raw 64-byte Ed25519 signature. */
  const SignatureSchema = base64url(64);
  /** A SHA-256 thumbprint (RFC 7638) of the root public key. */
  const KeyIdSchema = base64url(32);

  const IdSchema = z.string().min(1).max(128);
  const PatternSchema = z.string().min(1).max(256).regex(/^\S+$/, "a pattern without spaces");
  const TimestampSchema = z.int().nonnegative().max(8.64e15);
  const DepthSchema = z.int().min(0).max(MAX_DEPTH);
  /** A cap as a token states it: strict like every other token object, so an unknown field is malformed. */
  const TokenMoneySchema = MoneySchema.strict();

  /** What a block after the root may say; every restriction is optional (absent ⇒ inherited). */
  const BlockContentSchema = z.strictObject({
    id: IdSchema,
    issuedAt: TimestampSchema,
    /** Public half of the key that signs the next block (or the seal). */
    nextKey: Ed25519KeySchema,
    /** Agent that appended this block. Informational: not an authority. */
    issuer: IdSchema.optional(),
    /** Agent the token is for from this block on. */
    audience: IdSchema.optional(),
    scopes: z.array(PatternSchema).max(256).optional(),
    maxAmount: TokenMoneySchema.optional(),
    tools: z.array(PatternSchema).max(256).optional(),
    expiresAt: TimestampSchema.optional(),
    /** Delegation steps still allowed after this block. */
    depth: DepthSchema.optional(),
    /** The run that delegated, so the trace tree shows who handed what to whom. Informational: not an authority. */
    runId: IdSchema.optional(),
    traceId: IdSchema.optional(),
  });

  /** The root block states the whole authority and names the root key that signed it. */
  const RootBlockContentSchema = BlockContentSchema.extend({
    kid: KeyIdSchema,
    audience: IdSchema,
    scopes: z.array(PatternSchema).max(256),
    expiresAt: TimestampSchema,
    depth: DepthSchema,
  });

  const SignedBlockSchema = z.strictObject({ content: BlockContentSchema, sig: SignatureSchema });

  const SignedRootBlockSchema = z.strictObject({ content: RootBlockContentSchema, sig: SignatureSchema });

  /**
   * `key`: the private seed of the last block's `nextKey`, so the holder can append a block.
   * `seal`: a signature by that key over the chain instead, so nobody can append any more.
   */
  const ProofSchema = z.discriminatedUnion("type", [
    z.strictObject({ type: z.literal("key"), key: Ed25519KeySchema }),
    z.strictObject({ type: z.literal("seal"), sig: SignatureSchema }),
  ]);

  const WireTokenSchema = z.strictObject({
    v: z.literal(1),
    blocks: z.tuple([SignedRootBlockSchema], SignedBlockSchema).check(z.maxLength(MAX_BLOCKS)),
    proof: ProofSchema,
  });
  return { Ed25519KeySchema, SignatureSchema, KeyIdSchema, BlockContentSchema, RootBlockContentSchema, SignedBlockSchema, SignedRootBlockSchema, ProofSchema, WireTokenSchema };
});
type Schemas = ReturnType<typeof tokenSchemas>;

export type BlockContent = z.infer<Schemas["BlockContentSchema"]>;
export type RootBlockContent = z.infer<Schemas["RootBlockContentSchema"]>;
export type SignedBlock = z.infer<Schemas["SignedBlockSchema"]>;
export type SignedRootBlock = z.infer<Schemas["SignedRootBlockSchema"]>;
export type Proof = z.infer<Schemas["ProofSchema"]>;
export type WireToken = z.infer<Schemas["WireTokenSchema"]>;
