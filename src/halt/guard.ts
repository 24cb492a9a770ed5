import type { Approvals } from "../approvals/approvals.js";
import type { Decision } from "../decision.js";
import { ApprovalStatus, EventType, type ActionType } from "../enums.js";
import { HaltedError, InvalidInputError, type WardenError } from "../errors.js";
import type { ErrorSink, Recorder } from "../recorder.js";
import type { RunStore } from "../store/run-store.js";
import type { SqliteStore } from "../store/sqlite-store.js";
import { describeScope, HaltState, haltMatches, type HaltRecord, type HaltTarget } from "./halt.js";

/**  What the halt guard needs, injected. */
export interface HaltGuardDeps {
  store: SqliteStore;
  runs: RunStore;
  org: string;
  agentId: string;
  group: string | undefined;
  staleAfter: number;
  whenUnknown: "block" | "allow";
  pollInterval: number;
  recorder: Recorder;
  errors: ErrorSink;
  approvals: Approvals;
  groupOf: (agentId: string) => string | undefined;
  /** Remote mode: true while the control plane's halt state is not known. */
  stateUnknown: () => boolean;
  /** Aborts what the halts now in force cover (in-flight calls, their approval waits). */
  onHalts: () => void;
}

/** A subject a halt may cover: an agent, and the run it acts in with the runs above it. */
export interface HaltSubject {
  agentId: string;
  runId?: string | undefined;
  ancestorRunIds?: readonly string[] | undefined;
}

/**
 * The halt check that comes first in every decision, and the halts themselves: made, lifted,
 * followed across processes (a cheap version read when the known state is stale), applied to what
 * is in flight. Fails closed: a halt state that cannot be known beyond its staleness bound blocks.
 */
export class HaltGuard {
  readonly state: HaltState;
  readonly #deps: HaltGuardDeps;
  #signal = new AbortController();
  #poller: NodeJS.Timeout | undefined;

  constructor(deps: HaltGuardDeps) {
    this.#deps = deps;
    this.state = new HaltState(deps.store, deps.org);
  }

  /** Starts following halts other processes make on a file store. */
  start(): void {
    this.apply();
    if (this.#deps.store.isMemory) return;
    this.#poller = setInterval(() => this.poll(), this.#deps.pollInterval);
    this.#poller.unref();
  }

  close(): void {
    if (this.#poller) clearInterval(this.#poller);
  }

  /** Aborts while the client's own agent, its group or the organization is halted; renewed on resume. */
  get signal(): AbortSignal {
    return this.#signal.signal;
  }

  /**
   * The halt covering `subject` (or, when the client acts as another agent, the client's own agent):
   * `"unknown"` when the state cannot be known and the rule is to block.
   */
  find(subject: HaltSubject): HaltRecord | "unknown" | undefined {
    if (this.#deps.whenUnknown === "block" && this.#deps.stateUnknown()) return "unknown";
    if (!this.#deps.store.isMemory && Date.now() - this.state.syncedAt > this.#deps.staleAfter) {
      try {
        if (this.state.refresh()) this.apply();
      } catch (error) {
        this.#deps.errors.report(error);
        return this.#deps.whenUnknown === "block" ? "unknown" : undefined;
      }
    }
    return this.covering(subject);
  }

  /** The halt in force (as last read) that covers `subject`; no refresh. */
  covering(subject: HaltSubject): HaltRecord | undefined {
    if (this.state.active.length === 0) return undefined;
    const own = this.state.find({ agentId: subject.agentId, group: this.#deps.groupOf(subject.agentId), runId: subject.runId, ancestorRunIds: subject.ancestorRunIds });
    if (own !== undefined || subject.agentId === this.#deps.agentId) return own;
    // Acting as another agent id is something the halted client itself does.
    return this.state.find({ agentId: this.#deps.agentId, group: this.#deps.group, runId: undefined });
  }

  /** The block a halt gives. */
  decision(action: ActionType, halt: HaltRecord | "unknown"): Decision {
    const reason = halt === "unknown" ? "halt state unknown (store unreachable beyond the staleness bound)" : `halted (${describeScope(halt)}): ${halt.reason}`;
    return { action: "block", halted: true, cause: "halt", reason, matches: [], actionType: action, complete: halt !== "unknown" };
  }

  error(halt: HaltRecord | "unknown"): WardenError {
    return halt === "unknown" ? new HaltedError({ reason: "halt state unknown", scope: "unknown" }) : this.state.toError(halt);
  }

  /** Throws `HaltedError` when `subject` is halted (or the state is unknown and the rule is to block). */
  assertNotHalted(subject: HaltSubject): void {
    const halt = this.find(subject);
    if (halt !== undefined) throw this.error(halt);
  }

  /** True if a halt covering the agent was made at or after `since`: tokens issued before it stop verifying. */
  haltedSince(agentId: string | undefined, since: number): boolean {
    return this.state.haltedSince(agentId, agentId === undefined ? undefined : this.#deps.groupOf(agentId), since);
  }

  halt(input: HaltTarget & { reason: string; actor?: string | undefined }): HaltRecord {
    if (!input?.reason?.trim()) throw new InvalidInputError("a halt needs a reason");
    const record = this.state.halt(input, Date.now());
    this.#deps.recorder.record(EventType.AGENT_HALTED, { agentId: input.agentId ?? null, runId: input.runId ?? null }, { haltId: record.haltId, scope: record.scope, target: record.target, reason: record.reason }, input.actor ?? null);
    this.#deps.store.flush();
    this.apply();
    // Requests no process here waits on (paused calls, other processes' calls) are cancelled too,
    // in the halted run's sub-agent runs as well.
    const runs = record.scope === "run" && record.target !== undefined ? new Set([record.target, ...this.#deps.runs.descendantRunIds(record.target)]) : undefined;
    const covered = this.#deps.approvals
      .list({ status: ApprovalStatus.PENDING, limit: -1 })
      .filter((a) => (runs ? runs.has(a.runId) : haltMatches(record, { agentId: a.agentId, group: this.#deps.groupOf(a.agentId), runId: a.runId })));
    this.#deps.approvals.cancel(
      covered.map((a) => a.approvalId),
      this.state.toError(record).message,
    );
    return record;
  }

  resume(input: HaltTarget & { actor?: string | undefined; reason?: string | undefined }): HaltRecord[] {
    const lifted = this.state.resume(input, Date.now());
    if (lifted.length > 0) {
      this.#deps.recorder.record(EventType.AGENT_RESUMED, { agentId: input.agentId ?? null, runId: input.runId ?? null }, { haltIds: lifted.map((h) => h.haltId), scope: lifted[0]!.scope, target: lifted[0]!.target, reason: input.reason }, input.actor ?? null);
      this.#deps.store.flush();
    }
    this.apply();
    return lifted;
  }

  /** Re-reads the halts other processes made; applies them when they changed. */
  poll(): void {
    try {
      if (this.state.refresh()) {
        this.apply();
        // Then what was recorded before it is committed, so a reader elsewhere sees the calls the halt
        // came after; the halt itself never waits for the store's writer.
        if (!this.#deps.store.isMemory) this.#deps.store.flush();
      }
    } catch (error) {
      this.#deps.errors.report(error);
    }
  }

  /** Remote mode: the control plane's halts; applied when they changed. */
  mirror(halts: readonly HaltRecord[]): void {
    if (this.state.mirror(halts)) this.apply();
  }

  /** Aborts the client's signal when its agent is halted (renews it on resume), then what is in flight. */
  apply(): void {
    const own = this.state.find({ agentId: this.#deps.agentId, group: this.#deps.group, runId: undefined });
    if (own && !this.#signal.signal.aborted) this.#signal.abort(this.state.toError(own));
    if (!own && this.#signal.signal.aborted) this.#signal = new AbortController();
    if (this.state.active.length > 0) this.#deps.onHalts();
  }
}
