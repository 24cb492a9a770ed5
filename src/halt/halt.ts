import { HaltedError } from "../errors.js";
import { newId } from "../internal/ids.js";
import type { SqliteStore } from "../store/sqlite-store.js";

/**
 * Who a halt stops, from one run up to a group of agents. No target: the whole organization.
 * @example
 * import type { HaltTarget } from "agent-warden";
 * const target: HaltTarget = { group: "payments" };
 * warden.halt({ ...target, reason: "fraud alert" });
 */
export interface HaltTarget {
  agentId?: string | undefined;
  group?: string | undefined;
  runId?: string | undefined;
}

/**
 * One emergency stop as recorded: its scope, why, by whom, and when it was lifted, if it was.
 * @example
 * import type { HaltRecord } from "agent-warden";
 * const halts: readonly HaltRecord[] = warden.activeHalts;
 * for (const halt of halts) console.log(halt.scope, halt.target, halt.reason);
 */
export interface HaltRecord {
  haltId: string;
  scope: "organization" | "agent" | "group" | "run";
  target: string | undefined;
  reason: string;
  actor: string | undefined;
  createdAt: number;
  liftedAt: number | undefined;
}

/** @internal A `halts` row, as the embedded store and the control plane both keep it. */
export interface HaltRow {
  id: string;
  target_kind: HaltRecord["scope"];
  target: string | null;
  reason: string;
  actor: string | null;
  created_at: number;
  lifted_at: number | null;
}

export interface Subject {
  agentId: string;
  group: string | undefined;
  runId: string | undefined;
  /** The runs above `runId` in its tree: a halt of a run reaches its sub-agents' runs. */
  ancestorRunIds?: readonly string[] | undefined;
}

/** @internal */
export const toHaltRecord = (row: HaltRow): HaltRecord => ({
  haltId: row.id,
  scope: row.target_kind,
  target: row.target ?? undefined,
  reason: row.reason,
  actor: row.actor ?? undefined,
  createdAt: row.created_at,
  liftedAt: row.lifted_at ?? undefined,
});

export function describeScope(halt: HaltRecord): string {
  return halt.scope === "organization" ? "organization" : `${halt.scope} ${halt.target}`;
}

export function haltMatches(halt: HaltRecord, subject: Subject): boolean {
  switch (halt.scope) {
    case "organization":
      return true;
    case "agent":
      return halt.target === subject.agentId;
    case "group":
      return halt.target === subject.group;
    case "run":
      return halt.target === subject.runId || (subject.ancestorRunIds !== undefined && halt.target !== undefined && subject.ancestorRunIds.includes(halt.target));
  }
}

/**
 * Halt state of one organization in one store. Halts are rows every process sharing the store
 * sees; a version counter in `meta` lets each process notice a change with one cheap read.
 */
export class HaltState {
  readonly #store: SqliteStore;
  readonly #org: string;
  #active: HaltRecord[] = [];
  /** Every halt ever made, lifted or not: tokens issued before any of them stop verifying. */
  #history: HaltRecord[] = [];
  #version = "";
  #syncedAt = 0;

  constructor(store: SqliteStore, org: string) {
    this.#store = store;
    this.#org = org;
    this.refresh(true);
  }

  get active(): readonly HaltRecord[] {
    return this.#active;
  }

  get syncedAt(): number {
    return this.#syncedAt;
  }

  /** The first active halt that covers the subject. Cheap when nothing is halted. */
  find(subject: Subject): HaltRecord | undefined {
    if (this.#active.length === 0) return undefined;
    return this.#active.find((halt) => haltMatches(halt, subject));
  }

  /** True if a halt covering the agent was made at or after `since` (lifted or not). */
  haltedSince(agentId: string | undefined, group: string | undefined, since: number): boolean {
    return this.#history.some((h) => h.createdAt >= since && (h.scope === "organization" || (h.scope === "agent" && h.target === agentId) || (h.scope === "group" && group !== undefined && h.target === group)));
  }

  /** Re-reads the halts if another process changed them. Returns true when they changed. */
  refresh(force = false): boolean {
    const version = this.#store.peek<{ value: string }>("SELECT value FROM meta WHERE key = ?", this.#versionKey())?.value ?? "0";
    this.#syncedAt = Date.now();
    if (!force && version === this.#version) return false;
    this.#version = version;
    // Read without committing the queue first: halts are written in transactions of their own, never
    // queued, so there is nothing of this process's to wait for, and a halt another process made must
    // not wait behind the store's writer (a flush waits for it to commit everything it was handed).
    const rows = this.#store.db.prepare("SELECT id, target_kind, target, reason, actor, created_at, lifted_at FROM halts WHERE org = ? ORDER BY created_at").all(this.#org) as unknown as HaltRow[];
    this.#history = rows.map(toHaltRecord);
    this.#active = this.#history.filter((h) => h.liftedAt === undefined);
    return true;
  }

  halt(input: HaltTarget & { reason: string; actor?: string | undefined }, now: number): HaltRecord {
    const [scope, target] = haltScopeOf(input);
    const record: HaltRecord = { haltId: newId("halt"), scope, target, reason: input.reason, actor: input.actor, createdAt: now, liftedAt: undefined };
    this.#store.transaction(() => {
      this.#store.db
        .prepare("INSERT INTO halts (id, org, target_kind, target, reason, actor, created_at) VALUES (?,?,?,?,?,?,?)")
        .run(record.haltId, this.#org, scope, target ?? null, input.reason, input.actor ?? null, now);
      this.#bump();
    });
    this.refresh(true);
    return record;
  }

  /** Lifts the active halts with exactly this target. Returns what was lifted. */
  resume(input: HaltTarget & { actor?: string | undefined; reason?: string | undefined }, now: number): HaltRecord[] {
    const [scope, target] = haltScopeOf(input);
    // Read inside the transaction: a halt another process made since the last refresh is lifted and reported too.
    let lifted: HaltRecord[] = [];
    this.#store.transaction(() => {
      const rows = this.#store.db.prepare("SELECT id, target_kind, target, reason, actor, created_at, lifted_at FROM halts WHERE org = ? AND target_kind = ? AND target IS ? AND lifted_at IS NULL ORDER BY created_at").all(this.#org, scope, target ?? null) as unknown as HaltRow[];
      lifted = rows.map(toHaltRecord);
      this.#store.db
        .prepare("UPDATE halts SET lifted_at = ?, lifted_by = ?, lift_reason = ? WHERE org = ? AND target_kind = ? AND target IS ? AND lifted_at IS NULL")
        .run(now, input.actor ?? null, input.reason ?? null, this.#org, scope, target ?? null);
      this.#bump();
    });
    this.refresh(true);
    return lifted;
  }

  /**
   * Mirrors halts decided elsewhere (the control plane) into this store. A lifted halt stays lifted.
   * Returns true when the active halts changed.
   */
  mirror(records: readonly HaltRecord[]): boolean {
    if (records.length === 0) return false;
    const before = this.#active.map((h) => h.haltId).join();
    this.#store.transaction(() => {
      const upsert = this.#store.db.prepare(
        "INSERT INTO halts (id, org, target_kind, target, reason, actor, created_at, lifted_at) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET lifted_at = COALESCE(halts.lifted_at, excluded.lifted_at)",
      );
      for (const h of records) upsert.run(h.haltId, this.#org, h.scope, h.target ?? null, h.reason, h.actor ?? null, h.createdAt, h.liftedAt ?? null);
      this.#bump();
    });
    this.refresh(true);
    return this.#active.map((h) => h.haltId).join() !== before;
  }

  toError(halt: HaltRecord): HaltedError {
    return new HaltedError({ reason: halt.reason, scope: describeScope(halt) });
  }

  #versionKey(): string {
    return `halt_version:${this.#org}`;
  }

  #bump(): void {
    this.#store.db
      .prepare("INSERT INTO meta (key, value) VALUES (?, '1') ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1")
      .run(this.#versionKey());
  }
}

/** @internal Which halt a target names: the most specific of run, agent, group, else the organization. */
export function haltScopeOf(target: HaltTarget): [HaltRecord["scope"], string | undefined] {
  if (target.runId) return ["run", target.runId];
  if (target.agentId) return ["agent", target.agentId];
  if (target.group) return ["group", target.group];
  return ["organization", undefined];
}
