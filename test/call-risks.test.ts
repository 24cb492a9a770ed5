// Risks a surface finds in a call (`CallRisk`), decided together with the policies: strictest wins.
import { afterEach, describe, expect, it } from "vitest";
import { Warden, type CallRisk, type PolicySetInput } from "agent-warden";

const clients: Warden[] = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
});

function newWarden(policies: PolicySetInput): Warden {
  const warden = new Warden({ agentId: "risks", store: ":memory:", policies });
  clients.push(warden);
  return warden;
}

const risk = (action: CallRisk["action"]): CallRisk => ({ id: "mcp.tool-pin", action, reason: `the tool's definition changed (${action})`, severity: "high" });

describe("call risks", () => {
  it("decides a risk as strict as a policy asking the same, listed among the matches", () => {
    const warden = newWarden({ version: 1, default: "allow", policies: [{ id: "warn-reads", when: { tool: "read_*" }, action: "warn" }] });
    const held = warden.check({ tool: "read_file", risks: [risk("require_approval")] });
    expect(held).toMatchObject({ action: "require_approval", policyId: "mcp.tool-pin", reason: "the tool's definition changed (require_approval)", severity: "high" });
    expect(held.matches.map((match) => [match.policyId, match.kind, match.action])).toEqual([
      ["warn-reads", "policy", "warn"],
      ["mcp.tool-pin", "risk", "require_approval"],
    ]);
    // A refusal by a risk is a policy's refusal for adapters.
    expect(warden.check({ tool: "read_file", risks: [risk("block")] })).toMatchObject({ action: "block", cause: "policy", policyId: "mcp.tool-pin" });
    // A warning risk does not lower a stricter policy.
    const strict = newWarden({ version: 1, default: "allow", policies: [{ id: "no-reads", when: { tool: "read_*" }, action: "block" }] });
    expect(strict.check({ tool: "read_file", risks: [risk("warn")] })).toMatchObject({ action: "block", policyId: "no-reads" });
    // Over the default: a deny-by-default set still blocks.
    expect(newWarden({ version: 1, default: "block", policies: [] }).check({ tool: "read_file", risks: [risk("require_approval")] }).action).toBe("block");
    expect(warden.check({ tool: "read_file", risks: [] })).toMatchObject({ action: "warn", policyId: "warn-reads" });
    // A risk that cannot be decided is bad input, not no risk.
    expect(() => warden.check({ tool: "read_file", risks: [{ id: "x", reason: "?", action: "explode" } as unknown as CallRisk] })).toThrow(expect.objectContaining({ code: "invalid_input" }));
  });

  it("holds a governed call for a reviewer, records the risk, and only records it in shadow mode", async () => {
    const warden = newWarden({ version: 1, default: "allow", policies: [] });
    const held = warden.beginToolCall({ tool: "read_file", args: { path: "a" }, risks: [risk("require_approval")] });
    expect(held.outcome.outcome).toBe("needs_approval");
    expect(held.approval).toMatchObject({ policyId: "mcp.tool-pin", reason: "the tool's definition changed (require_approval)" });
    warden.approvals.approve(held.approval!.approvalId, { reviewer: "ops" });
    expect((await held.admit()).outcome).toBe("allowed");
    held.complete("ok");
    const shadowed = warden.beginToolCall({ tool: "read_file", args: { path: "b" }, risks: [risk("block")], shadow: true });
    expect(shadowed.outcome.outcome).toBe("warned");
    shadowed.complete("ok");
    const risks = warden.ledger.entries().filter((entry) => entry.type === "risk.detected");
    expect(risks.map((entry) => (entry.data as { policies: Array<{ policyId: string; action: string }> }).policies)).toEqual([
      [{ policyId: "mcp.tool-pin", action: "require_approval", mode: "enforce", severity: "high" }],
      [{ policyId: "mcp.tool-pin", action: "block", mode: "enforce", severity: "high" }],
    ]);
  });
});
