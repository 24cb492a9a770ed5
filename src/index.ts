export { Warden } from "./warden.js";
export type { CallRisk, CheckInput, ToolCallInit, ToolOptions, RunOptions } from "./warden.js";
export { ToolPins } from "./tool-pins.js";
export type { ToolPinRecord, ToolPinStatus, ToolDefinitionSighting } from "./tool-pins.js";
export type { TraceContextSource } from "./runs.js";
export { RunScope } from "./run-scope.js";
export { ToolCallHandle, isHalt } from "./tool-call.js";
export type { ToolContext } from "./tool-call.js";
export type { Admission, Outcome, RefusalCause } from "./admission.js";
export { raceAbort } from "./internal/abort.js";
export type { WardenOptions } from "./config.js";
export type { Decision, DecisionAction, PolicyMatch, BlockCause } from "./decision.js";
export { EventType, PolicyAction, ApprovalStatus, ToolCallStatus, RiskSeverity, ActionType, RunStatus } from "./enums.js";
export type { AgentContext } from "./enums.js";
export type { WardenEvent, EventListener } from "./events.js";
export type { RunRecord, RunSummary, StepRecord, ToolCallRecord, ApprovalRecord, LlmUsage } from "./records.js";
export { Approvals } from "./approvals/approvals.js";
export type { ApprovalDecisionInput, ApprovalRequestHandler, ApprovalRule } from "./approvals/approvals.js";
export { argsDigest } from "./approvals/binding.js";
export { ApprovalChannels, ApprovalChannelsSchema, APPROVAL_CHANNEL_EVENTS, attachApprovalChannels, channelsFromPolicySet, loadApprovalChannels, signWebhook, verifySlackSignature } from "./approvals/channels/index.js";
export type { ApprovalChannelsOptions, ApprovalChannelEvent, ApprovalDelivery, ApprovalDeliveryLog, ApprovalDeliveryMessage, ApprovalChannelsBackend, ChannelResponse, ApprovalLinkClaims, DeliveryFilter } from "./approvals/channels/index.js";
export type { WardenLogger } from "./logger.js";
export type { HaltRecord, HaltTarget } from "./halt/halt.js";
export { Ledger } from "./ledger/ledger.js";
export type { LedgerVerification } from "./ledger/ledger.js";
export type { LedgerCoverage, LedgerVerifyOptions, TrustedLedgerKey } from "./ledger/ledger.js";
export { openLedger } from "./ledger/open.js";
export type { OpenLedgerOptions } from "./ledger/open.js";
export { EvidenceBundleSchema, verifyEvidence } from "./ledger/evidence.js";
export type { EvidenceBundle, EvidenceVerification } from "./ledger/evidence.js";
export { fetchWitnessedCheckpoint } from "./ledger/witnessed-checkpoint.js";
export { rotateLedgerKey } from "./ledger/keyring.js";
export type { LedgerKeyRotation } from "./ledger/keyring.js";
export type { TelemetryGap } from "./remote/gaps.js";
export type { WitnessConfig } from "./ledger/witness-config.js";
export type { WitnessResult } from "./ledger/witnessing.js";
export type { WitnessCheck, WitnessedHeads } from "./ledger/witnessed.js";
export type { LedgerEntry } from "./ledger/chain.js";
export { expandLedgerEntry } from "./ledger/fold.js";
export { PolicyEngine } from "./policy/engine.js";
export { loadPolicyFile, parsePolicySet, parsePolicyText } from "./policy/load.js";
export { PolicyChannelsSchema } from "./policy/schema.js";
export type { PolicyChannels } from "./policy/schema.js";
export { PolicySetSchema } from "./policy/schema.js";
export { isWithinAgent, subAgentId } from "./policy/identity.js";
export { globCaptures } from "./policy/pattern.js";
export type { PolicySet, PolicySetInput, Policy, PolicyInput, RateLimit, Budget, When, Condition } from "./policy/schema.js";
export { createRedactor } from "./redaction/redact.js";
export type { RedactionOptions, RedactionRule, Redactor } from "./redaction/redact.js";
export { CurrencyConverter } from "./money.js";
export type { Money, CurrencyTable } from "./money.js";
export {
  WardenError,
  ConfigError,
  PolicyError,
  ToolBlockedError,
  ApprovalRejectedError,
  ApprovalTimeoutError,
  ApprovalInvalidError,
  ReviewerNotAllowedError,
  HaltedError,
  TokenError,
  PermissionDeniedError,
  NotFoundError,
  InvalidStateError,
  InvalidInputError,
  LedgerIntegrityError,
  StoreError,
  RemoteError,
} from "./errors.js";
export type { WardenErrorCode, TokenErrorReason, PolicyIssue, ApprovalInvalidReason } from "./errors.js";
export { Tokens } from "./tokens/tokens.js";
export { DelegatedTask } from "./delegation.js";
export { verifyToken, createTokenAuthority, attenuate, seal, hasPermission, toolAllowed, withinAmount, tokenDenial, inspectToken, parseDuration } from "./tokens/token.js";
export type { Authority, VerifiedToken, TokenBlock, TokenInspection, MintInput, Narrowing, TokenAuthority, TokenAuthorityOptions } from "./tokens/token.js";
export type { Jwk } from "./tokens/jwk.js";
export { formatRunTree } from "./format.js";
export type { RemoteLink, RemoteStatus } from "./remote/remote.js";
export type { RemoteOptions } from "./remote/options.js";
export type { DeadLetter } from "./remote/dead-letters.js";
