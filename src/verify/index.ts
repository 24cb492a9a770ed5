// agent-warden/verify: the evidence bundle verifier with no Node built-ins (WebCrypto Ed25519 and
// SHA-256), for Node and browsers alike.
export { verifyBundle } from "./verify.js";
export type { BundleVerification, VerificationFailure, VerificationFailureCode, VerifiedApproval, VerifyBundleOptions } from "./verify.js";
export type { PublicKeyInput } from "./keys.js";
export type { Cosignature } from "./note.js";
export { EvidenceBundleSchema } from "./schema.js";
export type { EvidenceBundle, EvidenceEntry } from "./schema.js";
