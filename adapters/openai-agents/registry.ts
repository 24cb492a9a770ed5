// What the guardrails, the run helper and the trace processor of one Warden client share.
import { AsyncLocalStorage } from "node:async_hooks";
import { getCurrentSpan } from "@openai/agents";
import type { ToolCallHandle, Warden } from "agent-warden";

/** Metadata that marks the runs this adapter opens, so a resumed SDK run finds them again. */
export const FRAMEWORK = "openai-agents";

export interface RunMetadata {
  framework: typeof FRAMEWORK;
  /** `workflow`: one SDK run (or trace); `agent`: one agent's turn in it; `nested`: an SDK run inside a governed tool call (an agent used as a tool). */
  kind: "workflow" | "agent" | "nested";
  agent?: string | undefined;
  [key: string]: unknown;
}

/** The Warden run a `governedRun` call is running under. */
export interface RunContextScope {
  warden: Warden;
  runId: string;
  traceId: string;
  /** True when this call resumes a paused SDK run: the processor looks for the agents' paused runs. */
  resumed: boolean;
}

export const runScope = new AsyncLocalStorage<RunContextScope>();

/** True for the metadata of a run this adapter opened, of this kind. */
export function isOurs(metadata: unknown, kind: RunMetadata["kind"]): boolean {
  const value = metadata as Partial<RunMetadata> | undefined;
  return value?.framework === FRAMEWORK && value.kind === kind;
}

export class Registry {
  /** Calls allowed by a guardrail, waiting for the tool's `invoke` to record their outcome. By SDK call id. */
  readonly active = new Map<string, ToolCallHandle>();
  /** Calls decided earlier (in `needsApproval`) that the guardrail finishes mapping. By SDK call id. */
  readonly decided = new Map<string, ToolCallHandle>();
  /** Calls paused through an SDK interruption, by SDK call id → the Warden run holding them. */
  readonly interrupted = new Map<string, string>();
  /** The trace processor's map from open span ids to Warden runs. */
  readonly spanRuns = new Map<string, string>();

  /** True when the Warden run holds a call still waiting for its approval through an interruption. */
  holdsPausedCall(runId: string): boolean {
    for (const holder of this.interrupted.values()) if (holder === runId) return true;
    return false;
  }

  /** The Warden run for code running now: the current SDK span's run, else the enclosing `governedRun`. */
  currentRunId(warden: Warden): string | undefined {
    const span = getCurrentSpan();
    if (span) {
      const runId = this.spanRuns.get(span.spanId) ?? (span.parentId ? this.spanRuns.get(span.parentId) : undefined);
      if (runId !== undefined) return runId;
    }
    const scope = runScope.getStore();
    return scope?.warden === warden ? scope.runId : undefined;
  }
}

const registries = new WeakMap<Warden, Registry>();

export function registryOf(warden: Warden): Registry {
  let registry = registries.get(warden);
  if (!registry) registries.set(warden, (registry = new Registry()));
  return registry;
}

/** Function spans whose call a guardrail already recorded; the trace processor skips them. */
export const governedSpans = new WeakSet<object>();
