import type { SqliteStore } from "./sqlite-store.js";

/** A `tool_pins` row. */
export interface ToolPinRow {
  server: string;
  tool: string;
  hash: string;
  definition: string;
  first_seen: number;
  latest_hash: string;
  latest_definition: string;
  latest_seen: number;
  findings: string;
  accepted_hash: string | null;
  accepted_at: number | null;
  accepted_by: string | null;
}

/** A definition as a surface saw it: its hash, the definition to show (JSON) and what it was found to carry (JSON). */
export interface SeenDefinition {
  server: string;
  tool: string;
  hash: string;
  definition: string;
  findings: string;
}

/** How often the cache asks whether another connection wrote the store (ms). */
export const REFRESH_MS = 100;
/** Pins kept in memory per client (a gateway in front of a few servers has tens to hundreds). */
const MAX_CACHED = 10_000;
const SELECT = "SELECT server, tool, hash, definition, first_seen, latest_hash, latest_definition, latest_seen, findings, accepted_hash, accepted_at, accepted_by FROM tool_pins";

/**
 * The pinned tool definitions of one organization in the embedded store, behind named operations.
 * Pins are read and written at once (not queued): a change another process saw, or an operator's
 * acceptance, counts for the next call everywhere.
 */
export class PinStore {
  readonly #store: SqliteStore;
  readonly #org: string;
  /**
   * Pins as last read, for the check on every call: kept while no other connection has committed
   * (`PRAGMA data_version`, asked at most every `REFRESH_MS`: even that query costs a read transaction's
   * locks); this connection's own writes clear it at once.
   */
  readonly #cache = new Map<string, ToolPinRow | null>();
  #version: number | undefined;
  #versionCheckedAt = -Infinity;

  constructor(store: SqliteStore, org: string) {
    this.#store = store;
    this.#org = org;
  }

  /**
   * Pins a definition seen for the first time, or notes the newest one seen for a pinned tool.
   * Returns the row before and after, in one transaction (two gateways may list the same server at once).
   */
  observe(seen: SeenDefinition, now = Date.now()): { before: ToolPinRow | undefined; after: ToolPinRow } {
    this.#cache.delete(`${seen.server}\u0000${seen.tool}`);
    return this.#store.transaction(() => {
      const before = this.#row(seen.server, seen.tool);
      if (before === undefined) {
        this.#store.db
          .prepare("INSERT INTO tool_pins (org, server, tool, hash, definition, first_seen, latest_hash, latest_definition, latest_seen, findings) VALUES (?,?,?,?,?,?,?,?,?,?)")
          .run(this.#org, seen.server, seen.tool, seen.hash, seen.definition, now, seen.hash, seen.definition, now, seen.findings);
      } else if (before.latest_hash !== seen.hash) {
        this.#store.db
          .prepare("UPDATE tool_pins SET latest_hash = ?, latest_definition = ?, latest_seen = ?, findings = ? WHERE org = ? AND server = ? AND tool = ?")
          .run(seen.hash, seen.definition, now, seen.findings, this.#org, seen.server, seen.tool);
      }
      return { before, after: this.#row(seen.server, seen.tool)! };
    });
  }

  /**
   * The pin of one tool, from memory unless another process may have changed it: what another
   * process writes (an operator's acceptance) counts here within `REFRESH_MS`.
   */
  get(server: string, tool: string): ToolPinRow | undefined {
    const now = performance.now();
    if (now - this.#versionCheckedAt >= REFRESH_MS) {
      this.#versionCheckedAt = now;
      const version = this.#store.peek<{ data_version: number }>("PRAGMA data_version")?.data_version;
      if (version !== this.#version) {
        this.#cache.clear();
        this.#version = version;
      }
    }
    const key = `${server}\u0000${tool}`;
    const cached = this.#cache.get(key);
    if (cached !== undefined) return cached ?? undefined;
    const row = this.#row(server, tool);
    if (this.#cache.size >= MAX_CACHED) this.#cache.clear();
    this.#cache.set(key, row ?? null);
    return row;
  }

  /** The pin of one tool as the store holds it now (not from memory). */
  read(server: string, tool: string): ToolPinRow | undefined {
    return this.#row(server, tool);
  }

  list(server?: string): ToolPinRow[] {
    return this.#store.all<ToolPinRow>(`${SELECT} WHERE org = ?1 AND (?2 IS NULL OR server = ?2) ORDER BY server, tool`, this.#org, server ?? null);
  }

  /** Makes the newest definition seen the pinned one, accepted by `actor`. The row before and after; undefined when there is no such pin. */
  accept(server: string, tool: string, actor: string | null, now = Date.now()): { before: ToolPinRow; after: ToolPinRow } | undefined {
    this.#cache.delete(`${server}\u0000${tool}`);
    return this.#store.transaction(() => {
      const before = this.#row(server, tool);
      if (before === undefined) return undefined;
      this.#store.db
        .prepare("UPDATE tool_pins SET hash = latest_hash, definition = latest_definition, accepted_hash = latest_hash, accepted_at = ?, accepted_by = ? WHERE org = ? AND server = ? AND tool = ?")
        .run(now, actor, this.#org, server, tool);
      return { before, after: this.#row(server, tool)! };
    });
  }

  #row(server: string, tool: string): ToolPinRow | undefined {
    return this.#store.peek<ToolPinRow>(`${SELECT} WHERE org = ? AND server = ? AND tool = ?`, this.#org, server, tool);
  }
}
