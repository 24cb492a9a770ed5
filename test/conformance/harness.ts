import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isHalt, WardenError, type PolicySetInput, type Warden } from "agent-warden";

/**
 * How a surface answered one call, in the surface's own terms mapped onto one closed set:
 * - `result`: the tool ran and its result reached the caller (or the model);
 * - `refused`: the tool did not run and the caller (or the model) was told why, the run carries on;
 * - `halted`: the run was stopped (a halt, or a token a halt invalidated);
 * - `failed`: the tool ran and threw; the caller (or the model) got the error;
 * - `aborted`: the caller's own cancellation ended the call.
 */
export type Outcome = "result" | "refused" | "halted" | "failed" | "aborted";

/** One governed call, as the harness hands it to a surface's driver. */
export interface Call {
  /** The Warden client the surface must use (policies, token and store set by the scenario). */
  warden: Warden;
  tool: string;
  args: Record<string, unknown>;
  /** The tool's body. Drivers wire it as the framework's tool implementation and pass the signal they get. */
  body: (signal?: AbortSignal) => Promise<unknown>;
  /** The caller's own cancellation (a framework's abort signal): drivers pass it wherever the framework takes one. */
  signal: AbortSignal;
  /** True: the caller already has a `warden.run` open around the surface. False: only what the surface opens itself. */
  insideRun: boolean;
  /** For model-driven surfaces: the usage each fake model response reports (LLM-token budget scenarios). */
  modelUsage: { inputTokens: number; outputTokens: number };
  /** The delegation token the client acts under, if the scenario gives one: surfaces that carry a token over the wire send it. */
  token: string | undefined;
  /** A token for surfaces that carry one over the wire: the scenario's, else one with every scope, minted before anything is halted. */
  wireToken: string;
}

/** What a driver reports back: the mapped outcome and, for the matrix, what the caller or model received. */
export interface Driven {
  outcome: Outcome;
  /** Short: `ToolMessage(error): …`, `HTTP 403 agent_halted`, `throws ToolBlockedError`. */
  received: string;
}

/**
 * One surface of Warden (a core API or an adapter driving its real framework), as the suite drives it.
 * @example
 * export const surface: Surface = { name: "run.tool", drive: async (call) => … };
 */
export interface Surface {
  name: string;
  /** Why this surface cannot express a scenario (shown in the matrix), or undefined when it can. */
  cannot?(scenario: ScenarioId): string | undefined;
  drive(call: Call): Promise<Driven>;
}

export type ScenarioId =
  | "allow"
  | "warn"
  | "block"
  | "approval-approved"
  | "approval-rejected"
  | "approval-expired"
  | "approval-aborted"
  | "halt-before-in-run"
  | "halt-before-no-run"
  | "halt-during"
  | "halt-during-ignores-signal"
  | "halt-of-delegator"
  | "token-scope"
  | "spend-budget"
  | "llm-token-budget"
  | "rate-limit"
  | "secret-in-args"
  | "tool-throws";

export const ORCHESTRATOR = "orchestrator";
/** A sub-identity of the orchestrator: the only audience a token the orchestrator holds may narrow to. */
export const AGENT = `${ORCHESTRATOR}/worker`;
export const SECRET = "sk_live_4f9a2b7c1d8e3f6a0b5c";
export const CARD = "4111 1111 1111 1111";

/** Classifies what a code surface threw (or returned) into an outcome. */
export function classify(error: unknown, callerSignal: AbortSignal): Driven {
  if (isHalt(error)) return { outcome: "halted", received: `throws ${(error as Error).name}` };
  if (WardenError.isInstance(error)) {
    if (callerSignal.aborted && error.code === "approval_rejected" && /abort/i.test(error.message)) return { outcome: "aborted", received: `throws ${error.name}` };
    return { outcome: "refused", received: `throws ${error.name}` };
  }
  if (callerSignal.aborted && error === callerSignal.reason) return { outcome: "aborted", received: "throws the caller's abort reason" };
  return { outcome: "failed", received: `throws ${error instanceof Error ? error.name : typeof error}` };
}

export interface ScenarioSetup {
  /** Policies of the client the surface uses. */
  policies: PolicySetInput;
  /** A delegation token for the client, minted by a first client on the same store. */
  token?: (minter: Warden) => string;
  /** Before the surface is driven: halts, calls that use up a limit. */
  before?: (warden: Warden) => void | Promise<void>;
  /** When the tool body starts (for halts during the call). */
  whileRunning?: (warden: Warden) => void;
  /** What the reviewer does with an approval request. */
  reviewer?: "approve" | "reject" | "abort" | "none";
  body?: "returns" | "throws" | "honours-signal" | "ignores-signal";
  args?: Record<string, unknown>;
  insideRun?: boolean;
  modelUsage?: { inputTokens: number; outputTokens: number };
}

export interface Expectation {
  outcome: Outcome;
  /** Whether the tool body was entered. */
  bodyRan: boolean;
  /** The tool call's recorded status; `undefined` when no tool call record is expected (the run itself was refused). */
  status?: readonly string[] | undefined;
  /** Event types the ledger must hold for this call (or, without a call record, after the halt). */
  events?: readonly string[];
  /** The ledger holds an entry recording the refusal after the halt. */
  refusalRecorded?: boolean;
  /** Nothing recorded contains the secret. */
  redacted?: boolean;
}

export interface Scenario {
  id: ScenarioId;
  title: string;
  tool: string;
  setup: ScenarioSetup;
  expect: Expectation;
}

/** A temporary store per run of a scenario on a surface; removed by `dispose`. */
export function tempStore(): { path: string; dispose: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "warden-conformance-"));
  return { path: join(dir, "warden.db"), dispose: () => rmSync(dir, { recursive: true, force: true }) };
}
