// agent-warden/witness: a transparency-log witness for Warden ledgers (and any C2SP tlog-witness client).
export { Witness, submissionBody } from "../ledger/witness.js";
export type { CheckpointSubmission, WitnessAnswer, WitnessOptions } from "../ledger/witness.js";
export { startWitness, witnessRequestListener } from "../ledger/witness-server.js";
export type { RunningWitness } from "../ledger/witness-server.js";
export { cosignatureLine, openCosignatures, parseWitnessKey, witnessVerifierKey } from "../ledger/cosignature.js";
export type { Cosignature, WitnessKey } from "../ledger/cosignature.js";
