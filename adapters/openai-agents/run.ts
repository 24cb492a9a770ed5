import { run, RunState } from "@openai/agents";
import type { Agent, AgentInputItem, CallModelInputFilter, NonStreamRunOptions, RunResult, RunToolApprovalItem } from "@openai/agents";
import { isHalt, WardenError, type ToolCallHandle, type Warden } from "agent-warden";
import { parseArguments } from "./govern.js";
import { FRAMEWORK, isOurs, registryOf, runScope, type RunMetadata } from "./registry.js";

/**
 * What `resolveInterruptions` did with each interruption of a paused run.
 * @example
 * import { resolveInterruptions, type InterruptionResolution } from "agent-warden/openai-agents";
 * const { approved, rejected }: InterruptionResolution = resolveInterruptions(result, warden);
 */
export interface InterruptionResolution {
  /** Approved in Warden: approved in the SDK state, the tool runs on the next `run(agent, state)`. */
  approved: RunToolApprovalItem[];
  /** Rejected or expired in Warden (or no longer verifiable): rejected in the SDK state with the reason as the model's tool result. */
  rejected: RunToolApprovalItem[];
  /** Still waiting for a reviewer (or held by a halt): left as they are. */
  pending: RunToolApprovalItem[];
  /** Interruptions Warden did not raise (a tool's own `needsApproval`, hosted tools): left to the application. */
  unmanaged: RunToolApprovalItem[];
}

/**
 * Applies the reviewers' answers recorded in Warden to a paused SDK run: each interruption Warden
 * raised is approved or rejected in the run state, or left pending. Run the state again afterwards.
 * @example
 * import { resolveInterruptions } from "agent-warden/openai-agents";
 * const { pending } = resolveInterruptions(result, warden);
 * if (pending.length === 0) result = await run(agent, result.state);
 */
export function resolveInterruptions(source: RunResult<any, any> | RunState<any, any>, warden: Warden): InterruptionResolution {
  return resolveWithHandles(source instanceof RunState ? source : source.state, warden).resolution;
}

function resolveWithHandles(state: RunState<any, any>, warden: Warden): { resolution: InterruptionResolution; handles: ToolCallHandle[] } {
  const registry = registryOf(warden);
  const resolution: InterruptionResolution = { approved: [], rejected: [], pending: [], unmanaged: [] };
  const handles: ToolCallHandle[] = [];
  for (const item of state.getInterruptions()) {
    const raw = item.rawItem;
    if (raw.type !== "function_call") {
      resolution.unmanaged.push(item);
      continue;
    }
    let handle: ToolCallHandle;
    try {
      handle = warden.resumeToolCall(raw.callId, { args: parseArguments(raw.arguments) });
    } catch (error) {
      const code = WardenError.isInstance(error) ? error.code : undefined;
      if (code === "not_found") resolution.unmanaged.push(item);
      else if (code === "invalid_state") {
        // Settled before (rejected, or approved where it then ran): its approval cannot be verified here.
        registry.interrupted.delete(raw.callId);
        state.reject(item, { message: `[warden] tool "${raw.name}" was not run: its approval could not be verified (${(error as Error).message})` });
        resolution.rejected.push(item);
      } else resolution.pending.push(item);
      continue;
    }
    // Decided by Warden without a request (allowed): the interruption is the tool's own `needsApproval`.
    if (handle.approval === undefined) {
      resolution.unmanaged.push(item);
      continue;
    }
    handles.push(handle);
    const outcome = handle.outcome;
    if (outcome.ok) {
      registry.interrupted.delete(raw.callId);
      registry.decided.set(raw.callId, handle);
      state.approve(item);
      resolution.approved.push(item);
    } else if (outcome.outcome === "refused") {
      registry.interrupted.delete(raw.callId);
      state.reject(item, { message: `[warden] tool "${handle.toolName}" was not approved: ${outcome.reason}` });
      resolution.rejected.push(item);
    } else {
      // Still waiting for its reviewer, or held by a halt: the run stays paused.
      registry.interrupted.set(raw.callId, handle.runId);
      resolution.pending.push(item);
    }
  }
  return { resolution, handles };
}

/**
 * Options of `governedRun`: the SDK's run options, plus metadata for the Warden run.
 * @example
 * import { governedRun } from "agent-warden/openai-agents";
 * await governedRun(agent, "refund order 1042", warden, { metadata: { task: "refund order 1042" }, maxTurns: 5 });
 */
export type GovernedRunOptions<TContext = undefined, TAgent extends Agent<any, any> = Agent<any, any>> = NonStreamRunOptions<TContext, TAgent> & {
  /** Recorded (redacted) on the Warden run: `{ task: "refund order 1042" }`. */
  metadata?: Record<string, unknown> | undefined;
};

/**
 * Runs an agent as one Warden run: the halt signal is passed to the SDK, a halt rejects with
 * `HaltedError`, and a run paused for approval stays open until it resumes. Given a paused run
 * state, it first applies the approvals recorded in Warden (`resolveInterruptions`), then continues it.
 * @example
 * import { governAgent, governedRun } from "agent-warden/openai-agents";
 * let result = await governedRun(governAgent(agent, warden), "refund order 1042", warden);
 * // later, once a reviewer approved in Warden:
 * result = await governedRun(agent, result.state, warden);
 */
export async function governedRun<TAgent extends Agent<any, any>, TContext = undefined>(
  agent: TAgent,
  input: string | AgentInputItem[] | RunState<TContext, TAgent>,
  warden: Warden,
  options: GovernedRunOptions<TContext, TAgent> = {},
): Promise<RunResult<TContext, TAgent>> {
  const { metadata, ...runOptions } = options;
  const resumed = input instanceof RunState ? await pausedWorkflowRun(input, warden) : undefined;
  const workflow = resumed ?? warden.beginRun({ ...metadata, framework: FRAMEWORK, kind: "workflow", agent: agent.name } satisfies RunMetadata);
  const signal = runOptions.signal ? AbortSignal.any([runOptions.signal, warden.signal]) : warden.signal;
  let result: RunResult<TContext, TAgent>;
  try {
    const callModelInputFilter = gateModelCalls(warden, runOptions.callModelInputFilter);
    result = await runScope.run({ warden, runId: workflow.runId, traceId: workflow.traceId, resumed: resumed !== undefined }, () => run(agent, input, { ...runOptions, callModelInputFilter, stream: false, signal }));
  } catch (error) {
    const thrown = haltIn(error) ?? error;
    await warden.failRun(workflow.runId, thrown).catch(() => {});
    throw thrown;
  }
  // Paused for approval: the run stays open until it resumes.
  if (result.interruptions.length === 0) await warden.completeRun(workflow.runId, result.finalOutput).catch(() => {});
  return result;
}

/**
 * Every model call of the run, whatever its model (a name the runner resolves included), is gated before
 * it is made: a halt or a spent LLM-token budget refuses it. Then the caller's own filter, if any.
 */
function gateModelCalls(warden: Warden, own: CallModelInputFilter | undefined): CallModelInputFilter {
  const registry = registryOf(warden);
  const gate: CallModelInputFilter = async (args) => {
    warden.admitLlmCall({ runId: registry.currentRunId(warden), model: typeof args.agent.model === "string" ? args.agent.model : undefined });
    return own ? own(args) : args.modelData;
  };
  if (own?.preserveInputIdentity !== undefined) gate.preserveInputIdentity = own.preserveInputIdentity;
  return gate;
}

/** Applies recorded approvals, and finds the still-open Warden run the paused SDK run belongs to. */
async function pausedWorkflowRun(state: RunState<any, any>, warden: Warden): Promise<{ runId: string; traceId: string } | undefined> {
  const { handles } = resolveWithHandles(state, warden);
  const first = handles[0];
  if (first === undefined) return undefined;
  let current = await warden.getRun(first.runId);
  for (let depth = 0; depth < 64 && current.parentRunId !== undefined && !isOurs(current.metadata, "workflow"); depth++) {
    current = await warden.getRun(current.parentRunId);
  }
  return current.status === "running" ? { runId: current.runId, traceId: current.traceId } : undefined;
}

/** The `HaltedError` behind an SDK error (a guardrail tripwire, a tool call error, the aborted signal). */
function haltIn(error: unknown, depth = 0): WardenError | undefined {
  if (depth > 6 || error === null || typeof error !== "object") return undefined;
  if (WardenError.isInstance(error)) return isHalt(error) ? error : undefined;
  const value = error as { error?: unknown; cause?: unknown; result?: { output?: { outputInfo?: { error?: unknown } } } };
  return haltIn(value.result?.output?.outputInfo?.error, depth + 1) ?? haltIn(value.error, depth + 1) ?? haltIn(value.cause, depth + 1);
}
