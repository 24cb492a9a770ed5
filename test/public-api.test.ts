// The public surface: what `agent-warden` exports at runtime and the types users rely on
// (checked by `npm run typecheck`, which includes this file).
import * as warden from "agent-warden";
import { describe, expect, expectTypeOf, it } from "vitest";
import type { Decision, RunRecord, ToolCallRecord, WardenEvent, WardenOptions } from "agent-warden";

describe("public API", () => {
  it("exports the client, the enums, the errors and the helpers by name", () => {
    expect(Object.keys(warden).sort()).toEqual(
      [
        "APPROVAL_CHANNEL_EVENTS",
        "ActionType",
        "ApprovalChannels",
        "ApprovalChannelsSchema",
        "ApprovalInvalidError",
        "ApprovalRejectedError",
        "ApprovalStatus",
        "ApprovalTimeoutError",
        "Approvals",
        "ConfigError",
        "CurrencyConverter",
        "DelegatedTask",
        "EventType",
        "EvidenceBundleSchema",
        "HaltedError",
        "InvalidInputError",
        "InvalidStateError",
        "Ledger",
        "LedgerIntegrityError",
        "NotFoundError",
        "PermissionDeniedError",
        "PolicyAction",
        "PolicyChannelsSchema",
        "PolicyEngine",
        "PolicyError",
        "PolicySetSchema",
        "RemoteError",
        "ReviewerNotAllowedError",
        "RiskSeverity",
        "RunScope",
        "RunStatus",
        "StoreError",
        "TokenError",
        "Tokens",
        "ToolBlockedError",
        "ToolCallHandle",
        "ToolCallStatus",
        "ToolPins",
        "Warden",
        "WardenError",
        "attachApprovalChannels",
        "argsDigest",
        "attenuate",
        "channelsFromPolicySet",
        "createRedactor",
        "createTokenAuthority",
        "expandLedgerEntry",
        "fetchWitnessedCheckpoint",
        "formatRunTree",
        "globCaptures",
        "hasPermission",
        "inspectToken",
        "isHalt",
        "isWithinAgent",
        "loadApprovalChannels",
        "loadPolicyFile",
        "openLedger",
        "parseDuration",
        "parsePolicySet",
        "parsePolicyText",
        "raceAbort",
        "rotateLedgerKey",
        "seal",
        "signWebhook",
        "subAgentId",
        "tokenDenial",
        "toolAllowed",
        "verifyEvidence",
        "verifySlackSignature",
        "verifyToken",
        "withinAmount",
      ].sort(),
    );
  });

  it("gives every error a stable code and a common base", () => {
    const errors = [
      new warden.ToolBlockedError({ toolName: "deploy", reason: "r", policyId: "p" }),
      new warden.HaltedError({ reason: "r", scope: "organization" }),
      new warden.TokenError("expired", "m"),
      new warden.ConfigError("m"),
    ];
    expect(errors.map((e) => [e.name, e.code, warden.WardenError.isInstance(e), e instanceof warden.WardenError])).toEqual([
      ["ToolBlockedError", "tool_blocked", true, true],
      ["HaltedError", "halted", true, true],
      ["TokenError", "token_invalid", true, true],
      ["ConfigError", "config_invalid", true, true],
    ]);
    expect(errors[0]!.message).toBe('[warden] tool "deploy" blocked by policy "p": r');
    expect(warden.WardenError.isInstance(new Error("x"))).toBe(false);
  });

  it("types decisions as a union on action", () => {
    expectTypeOf<Decision["action"]>().toEqualTypeOf<"allow" | "warn" | "block" | "require_approval">();
    expectTypeOf<Extract<Decision, { action: "require_approval" }>["timeoutMs"]>().toEqualTypeOf<number>();
    expectTypeOf<WardenOptions["agentId"]>().toEqualTypeOf<string>();
    expectTypeOf<RunRecord["toolCalls"]>().toEqualTypeOf<ToolCallRecord[]>();
    expectTypeOf<WardenEvent["type"]>().toEqualTypeOf<warden.EventType>();
    expectTypeOf<warden.ToolCallStatus>().toEqualTypeOf<"pending" | "completed" | "blocked" | "awaiting_approval" | "failed" | "rejected">();
  });
});
