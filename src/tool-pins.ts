import { z } from "zod";
import { once } from "./internal/once.js";
import { EventType } from "./enums.js";
import { InvalidInputError, NotFoundError } from "./errors.js";
import type { PinStore, ToolPinRow } from "./store/pin-store.js";

/**
 * Where a pinned tool stands: `pinned` (as first seen), `flagged` (as first seen, but it carries
 * instructions aimed at the model), `changed` (the server now serves another definition: a "rug
 * pull" until someone accepts it), `accepted` (an operator accepted the definition in force).
 * @example
 * import type { ToolPinStatus } from "agent-warden";
 * const suspicious = warden.toolPins.list().filter((pin) => (["changed", "flagged"] as ToolPinStatus[]).includes(pin.status));
 */
export type ToolPinStatus = "pinned" | "flagged" | "changed" | "accepted";

/**
 * A pinned tool definition: what was first seen (or last accepted), and what the server serves now
 * when that differs.
 * @example
 * import type { ToolPinRecord } from "agent-warden";
 * const describe = (pin: ToolPinRecord) => `${pin.server}/${pin.tool} ${pin.hash.slice(0, 12)} ${pin.status}`;
 */
export interface ToolPinRecord {
  server: string;
  tool: string;
  /** SHA-256 (hex) of the pinned definition's canonical JSON. */
  hash: string;
  /** The pinned definition, redacted as it reached the agent. */
  definition: unknown;
  /** When the tool was first seen (ms since the epoch). */
  firstSeenAt: number;
  status: ToolPinStatus;
  /** The newest definition seen, when it differs from the pinned one. */
  changed?: { hash: string; definition: unknown; seenAt: number } | undefined;
  /** What the newest definition seen carries that speaks to the model (instructions, hidden characters). */
  findings: string[];
  /** Who accepted the pinned definition, and when. */
  accepted?: { hash: string; at: number; by: string | undefined } | undefined;
}

/** The largest definition kept in the store as JSON (characters). */
const MAX_DEFINITION_CHARS = 256 * 1024;

// Built on the first sighting (an MCP gateway listing tools), not at import.
const SightingSchema = once(() =>
  z.object({
    server: z.string().min(1).max(256),
    tool: z.string().min(1).max(256),
    hash: z.string().regex(/^[0-9a-f]{64}$/, "a SHA-256 in hex"),
    definition: z.unknown(),
    findings: z.array(z.string().max(1000)).max(100).default([]),
  }),
);

/**
 * A tool definition as a surface saw it (an MCP gateway listing a server's tools).
 * @example
 * import type { ToolDefinitionSighting } from "agent-warden";
 * const seen: ToolDefinitionSighting = { server: "files", tool: "read_file", hash, definition: tool };
 */
export type ToolDefinitionSighting = z.input<ReturnType<typeof SightingSchema>>;

/** @internal What pins need, injected. */
export interface ToolPinsDeps {
  store: PinStore;
  record: (type: EventType, data: Record<string, unknown>, actor: string | null) => void;
}

/**
 * Tool definitions pinned on first sight, in the embedded store (in remote mode too: pins are this
 * machine's trust in the servers it talks to). A later definition of the same tool is kept beside
 * the pin until an operator accepts it; both the change and the acceptance go into the ledger as
 * `risk.detected` entries.
 * @example
 * import { Warden } from "agent-warden";
 * const warden = new Warden({ agentId: "mcp-agent" });
 * for (const pin of warden.toolPins.list()) if (pin.status === "changed") warden.toolPins.accept(pin.server, pin.tool, { actor: "ops" });
 */
export class ToolPins {
  readonly #deps: ToolPinsDeps;

  /** @internal */
  constructor(deps: ToolPinsDeps) {
    this.#deps = deps;
  }

  /**
   * Pins a tool seen for the first time, or notes that a pinned tool is now served with another
   * definition. `first`: this sighting pinned it; `drifted`: this sighting is the first of a definition
   * that differs from the pin (what `risk.detected` records).
   */
  observe(sighting: ToolDefinitionSighting): { pin: ToolPinRecord; first: boolean; drifted: boolean } {
    const parsed = SightingSchema().safeParse(sighting);
    if (!parsed.success) throw new InvalidInputError(`invalid tool definition sighting: ${parsed.error.issues.map((issue) => `${issue.path.join(".") || "value"}: ${issue.message}`).join("; ")}`);
    const seen = parsed.data;
    // Listed again as pinned (or as already noted): nothing to write.
    const known = this.#deps.store.read(seen.server, seen.tool);
    if (known !== undefined && known.latest_hash === seen.hash) return { pin: toRecord(known), first: false, drifted: false };
    const definition = JSON.stringify(seen.definition ?? null);
    // Kept to show a reviewer; the hash is what is compared, so an outsized definition is noted, not stored.
    const shown = definition.length > MAX_DEFINITION_CHARS ? JSON.stringify({ truncated: true, chars: definition.length }) : definition;
    const { before, after } = this.#deps.store.observe({ server: seen.server, tool: seen.tool, hash: seen.hash, definition: shown, findings: JSON.stringify(seen.findings) });
    const pin = toRecord(after);
    const first = before === undefined;
    const drifted = before !== undefined && before.latest_hash !== seen.hash && seen.hash !== before.hash;
    if (first && seen.findings.length > 0) {
      this.#deps.record(EventType.RISK_DETECTED, { pin: "flagged", server: seen.server, tool: seen.tool, hash: seen.hash, findings: seen.findings, severity: "high" }, null);
    } else if (drifted) {
      this.#deps.record(EventType.RISK_DETECTED, { pin: "changed", server: seen.server, tool: seen.tool, pinnedHash: before.hash, hash: seen.hash, firstSeenAt: before.first_seen, findings: seen.findings, severity: "high" }, null);
    }
    return { pin, first, drifted };
  }

  /** The pin of one tool, if it was ever seen (what another process wrote counts within 100 ms). */
  get(server: string, tool: string): ToolPinRecord | undefined {
    const row = this.#deps.store.get(server, tool);
    return row && toRecord(row);
  }

  /** Every pin (of one server), by server and tool. */
  list(filter: { server?: string | undefined } = {}): ToolPinRecord[] {
    return this.#deps.store.list(filter.server).map(toRecord);
  }

  /**
   * Accepts the definition the server serves now: it becomes the pin, and calls to the tool are no
   * longer flagged for it. Recorded in the ledger. Throws `NotFoundError` for a tool never seen.
   */
  accept(server: string, tool: string, options: { actor?: string | undefined } = {}): ToolPinRecord {
    if (typeof server !== "string" || server.length === 0 || typeof tool !== "string" || tool.length === 0) throw new InvalidInputError("a pin is named by a server and a tool");
    const result = this.#deps.store.accept(server, tool, options.actor ?? null);
    if (result === undefined) throw new NotFoundError("tool pin", `${server}/${tool}`);
    const { before, after } = result;
    this.#deps.record(EventType.RISK_DETECTED, { pin: "accepted", server, tool, hash: after.hash, previousHash: before.hash, findings: JSON.parse(after.findings) as string[], severity: "low" }, options.actor ?? null);
    return toRecord(after);
  }
}

function toRecord(row: ToolPinRow): ToolPinRecord {
  const findings = JSON.parse(row.findings) as string[];
  const changed = row.latest_hash !== row.hash;
  const status: ToolPinStatus = changed ? "changed" : row.accepted_hash === row.hash ? "accepted" : findings.length > 0 ? "flagged" : "pinned";
  return {
    server: row.server,
    tool: row.tool,
    hash: row.hash,
    definition: JSON.parse(row.definition) as unknown,
    firstSeenAt: row.first_seen,
    status,
    ...(changed && { changed: { hash: row.latest_hash, definition: JSON.parse(row.latest_definition) as unknown, seenAt: row.latest_seen } }),
    findings,
    ...(row.accepted_hash !== null && { accepted: { hash: row.accepted_hash, at: row.accepted_at ?? 0, by: row.accepted_by ?? undefined } }),
  };
}
