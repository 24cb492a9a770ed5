import type { Warden } from "agent-warden";
import { AGENT, CARD, ORCHESTRATOR, SECRET, type Scenario } from "./harness.js";

const halt = (agentId: string) => (warden: Warden) => {
  warden.halt({ reason: "conformance: stop everything", agentId });
};

/** Uses up the rate limit with one call the surface did not make. */
const useUpLimit = (tool: string) => (warden: Warden) => {
  const handle = warden.beginToolCall({ tool, args: { amount: 100, currency: "EUR" } });
  handle.complete({ ok: true });
};

/** Exhausts the open run's LLM-token budget with one model call the surface did not make. */
const spendTokens = (warden: Warden) => {
  warden.beginLlmCall({ model: "earlier-model" }).complete({ inputTokens: 400, outputTokens: 100 });
};

/** A client whose token is an orchestrator's, attenuated for this agent. */
const delegatedToken =
  (scopes: string[]) =>
  (warden: Warden): string => {
    const root = warden.tokens.mint({ agentId: ORCHESTRATOR, scopes, ttl: "1h" });
    return warden.tokens.attenuate(root, { audience: AGENT });
  };

const refundApproval = { policies: [{ id: "approve-deploys", when: { tool: "deploy" }, action: "require_approval" as const }] };

/**
 * The scenarios every surface answers. Each names the tool it calls, how the client is set up, what
 * happens around the call, and the outcome and records every surface must show.
 */
export const scenarios: Scenario[] = [
  {
    id: "allow",
    title: "an allowed call runs and is recorded",
    tool: "read_order",
    setup: { policies: { policies: [] } },
    expect: { outcome: "result", bodyRan: true, status: ["completed"], events: ["tool.called", "tool.completed"] },
  },
  {
    id: "warn",
    title: "a warned call runs, flagged as a risk",
    tool: "write_note",
    setup: { policies: { policies: [{ id: "flag-writes", when: { tool: "write_*" }, action: "warn" }] } },
    expect: { outcome: "result", bodyRan: true, status: ["completed"], events: ["tool.called", "policy.matched", "risk.detected", "tool.completed"] },
  },
  {
    id: "block",
    title: "a blocked call never runs; the caller is told why",
    tool: "delete_records",
    setup: { policies: { policies: [{ id: "no-deletes", when: { tool: "delete_*" }, action: "block", reason: "never delete records" }] } },
    expect: { outcome: "refused", bodyRan: false, status: ["blocked"], events: ["tool.called", "policy.matched", "tool.blocked"] },
  },
  {
    id: "approval-approved",
    title: "a call a reviewer approves runs once",
    tool: "deploy",
    setup: { policies: refundApproval, reviewer: "approve" },
    expect: { outcome: "result", bodyRan: true, status: ["completed"], events: ["tool.called", "approval.requested", "approval.approved", "tool.completed"] },
  },
  {
    id: "approval-rejected",
    title: "a call a reviewer rejects never runs",
    tool: "deploy",
    setup: { policies: refundApproval, reviewer: "reject" },
    expect: { outcome: "refused", bodyRan: false, status: ["rejected"], events: ["tool.called", "approval.requested", "approval.rejected"] },
  },
  {
    id: "approval-expired",
    title: "a call nobody reviews in time never runs",
    tool: "deploy",
    setup: { policies: { policies: [{ id: "approve-deploys", when: { tool: "deploy" }, action: "require_approval", approval: { timeout: "60ms" } }] }, reviewer: "none" },
    expect: { outcome: "refused", bodyRan: false, status: ["rejected"], events: ["tool.called", "approval.requested"] },
  },
  {
    id: "approval-aborted",
    title: "a wait the caller aborts ends the call, which never stays awaiting approval",
    tool: "deploy",
    setup: { policies: refundApproval, reviewer: "abort" },
    expect: { outcome: "aborted", bodyRan: false, status: ["rejected", "failed"], events: ["tool.called", "approval.requested"] },
  },
  {
    id: "halt-before-in-run",
    title: "a halt before the call, inside an open run, stops it",
    tool: "read_order",
    setup: { policies: { policies: [] }, insideRun: true, before: halt(AGENT) },
    expect: { outcome: "halted", bodyRan: false, refusalRecorded: true },
  },
  {
    id: "halt-before-no-run",
    title: "a halt before the call, with no run open, stops it and is recorded",
    tool: "read_order",
    setup: { policies: { policies: [] }, insideRun: false, before: halt(AGENT) },
    expect: { outcome: "halted", bodyRan: false, refusalRecorded: true },
  },
  {
    id: "halt-during",
    title: "a halt while the tool runs stops the run; the call is never recorded as a success",
    tool: "long_task",
    setup: { policies: { policies: [] }, whileRunning: halt(AGENT), body: "honours-signal" },
    expect: { outcome: "halted", bodyRan: true, status: ["failed", "blocked", "rejected"] },
  },
  {
    id: "halt-during-ignores-signal",
    title: "a halt stops the run even when the tool ignores its signal",
    tool: "long_task",
    setup: { policies: { policies: [] }, whileRunning: halt(AGENT), body: "ignores-signal" },
    expect: { outcome: "halted", bodyRan: true, status: ["failed", "blocked", "rejected"] },
  },
  {
    id: "halt-of-delegator",
    title: "a halt of the delegating agent reaches the sub-agent's token",
    tool: "flights.book",
    setup: { policies: { policies: [] }, token: delegatedToken(["flights:*"]), before: halt(ORCHESTRATOR) },
    expect: { outcome: "halted", bodyRan: false, refusalRecorded: true },
  },
  {
    id: "token-scope",
    title: "a call outside the token's scopes is refused before policy",
    tool: "payments.refund",
    setup: { policies: { policies: [] }, token: delegatedToken(["flights:*"]) },
    expect: { outcome: "refused", bodyRan: false, status: ["blocked"], events: ["tool.called", "tool.blocked"] },
  },
  {
    id: "spend-budget",
    title: "a call over the run's spend budget is refused",
    tool: "payments.refund",
    setup: { policies: { budgets: [{ id: "run-spend", spend: { max: { amount: 10_000, currency: "EUR" } } }] }, args: { amount: 20_000, currency: "EUR" } },
    expect: { outcome: "refused", bodyRan: false, status: ["blocked"], events: ["tool.called", "policy.matched", "tool.blocked"] },
  },
  {
    id: "llm-token-budget",
    title: "a model call over the run's token budget is refused and no tool runs",
    tool: "read_order",
    setup: { policies: { budgets: [{ id: "run-tokens", tokens: 100 }] }, insideRun: true, before: spendTokens },
    expect: { outcome: "refused", bodyRan: false, events: ["tool.blocked"] },
  },
  {
    id: "rate-limit",
    title: "a call over the rate limit is refused",
    tool: "payments.refund",
    setup: { policies: { limits: [{ id: "refund-rate", tool: "payments.*", max: 1, per: "1h", scope: "agent" }] }, before: useUpLimit("payments.refund") },
    expect: { outcome: "refused", bodyRan: false, status: ["blocked"], events: ["tool.called", "policy.matched", "tool.blocked"] },
  },
  {
    id: "secret-in-args",
    title: "a secret in the arguments is redacted wherever it is recorded",
    tool: "charge_card",
    setup: { policies: { policies: [] }, args: { card: CARD, note: `use key ${SECRET}`, api_key: SECRET } },
    expect: { outcome: "result", bodyRan: true, status: ["completed"], redacted: true },
  },
  {
    id: "tool-throws",
    title: "a tool that throws is recorded as failed and its error reaches the caller",
    tool: "read_order",
    setup: { policies: { policies: [] }, body: "throws" },
    expect: { outcome: "failed", bodyRan: true, status: ["failed"], events: ["tool.called", "tool.completed"] },
  },
];
