import type { EventType } from "./enums.js";
import { WardenError } from "./errors.js";
import type { EventBus, WardenEvent } from "./events.js";
import { canonicalJson } from "./internal/canonical.js";
import { newId } from "./internal/ids.js";
import { POLICY_SET_ENTRY, policySetDraft } from "./ledger/evidence.js";
import type { Redactor } from "./redaction/redact.js";
import { Draft } from "./store/draft.js";
import type { SqliteStore } from "./store/sqlite-store.js";

/** Where an event belongs: its agent, run, step and tool call (null where none). */
export interface EventIds {
  agentId: string | null;
  runId: string | null;
  stepId?: string | null | undefined;
  toolCallId?: string | null | undefined;
}

/**
 * The one sink for failures that must not reach agent code: the `onError` option if set, else one
 * process warning per kind of failure (bounded memory of what was warned).
 */
export class ErrorSink {
  readonly #onError: ((error: unknown) => void) | undefined;
  readonly #warned = new Set<string>();

  constructor(onError: ((error: unknown) => void) | undefined) {
    this.#onError = onError;
  }

  report(error: unknown, source?: string): void {
    if (this.#onError) {
      try {
        this.#onError(error);
      } catch {
        // An error handler that throws has nowhere left to report to.
      }
      return;
    }
    const key = `${source ?? ""}:${error instanceof Error ? `${error.name}:${error.message}` : String(error)}`;
    if (this.#warned.has(key)) return;
    // Warn once per kind, but never let the memory of what was warned grow without bound.
    if (this.#warned.size >= 256) this.#warned.clear();
    this.#warned.add(key);
    // Warden's own errors already carry the prefix: the warning says it once.
    const message = (error instanceof Error ? error.message : String(error)).replace(/^\[warden\] /, "");
    process.emitWarning(`[warden] ${source ? `${source}: ` : ""}${message}`, { code: "WARDEN_TELEMETRY" });
  }
}


/**  What the recorder needs: the store, the bus, the link to the control plane, the redactor. */
export interface RecorderDeps {
  store: SqliteStore;
  bus: EventBus;
  org: string;
  redact: Redactor;
  errors: ErrorSink;
  /** Remote mode: sends each event to the control plane (also set later, with `sendTo`). */
  send: ((event: WardenEvent) => void) | undefined;
  /** The most a recorded value (input, output, error, metadata) may take, in bytes of JSON. */
  maxRecordedBytes: number;
}

/**
 * Writes what happened: each event into the hash-chained ledger, onto the bus and to the control
 * plane; and turns values into what may be recorded (redacted, capped in size). Telemetry fails
 * open: nothing here throws into agent code.
 */
export class Recorder {
  readonly #deps: RecorderDeps;
  #send: ((event: WardenEvent) => void) | undefined;
  #policyHash: string | null | undefined;
  #pendingPolicy: { set: unknown } | undefined;

  constructor(deps: RecorderDeps) {
    this.#deps = deps;
    this.#send = deps.send;
  }

  /** Remote mode, once the link to the control plane exists: each event recorded from now on is sent. */
  sendTo(send: (event: WardenEvent) => void): void {
    this.#send = send;
  }

  get errors(): ErrorSink {
    return this.#deps.errors;
  }

  record(type: EventType, ids: EventIds, data: Record<string, unknown>, actor: string | null = null): void {
    const { store, bus, org } = this.#deps;
    if (this.#pendingPolicy !== undefined) {
      const { set } = this.#pendingPolicy;
      this.#pendingPolicy = undefined;
      this.#writePolicySet(set);
    }
    const id = newId("evt");
    const ts = Date.now();
    const stepId = ids.stepId ?? null;
    const toolCallId = ids.toolCallId ?? null;
    try {
      store.append(new Draft(id, ts, type, org, ids.agentId, ids.runId, stepId, toolCallId, actor, canonicalJson(data)));
    } catch (error) {
      this.#deps.errors.report(error);
    }
    const send = this.#send;
    // The event as subscribers see it, built only when someone will.
    if (!bus.hasListeners && send === undefined) return;
    const event: WardenEvent = { id, type, ts, org, agentId: ids.agentId, runId: ids.runId, stepId, toolCallId, actor, data };
    bus.emit(event);
    send?.(event);
  }

  /**
   * Notes the policy set now in force. It is written to the ledger just before the next entry, when it
   * differs from the one recorded last, so evidence bundles show which policy a decision was made under
   * and a client that records nothing writes nothing. Kept local: the control plane records the versions
   * it serves itself.
   */
  notePolicySet(policySet: unknown): void {
    // Read once, when the store opens: a read commits queued writes, which the hot path must not do.
    if (this.#policyHash === undefined) {
      try {
        this.#policyHash = (JSON.parse(this.#deps.store.latestEntryData(POLICY_SET_ENTRY) ?? "{}") as { hash?: string }).hash ?? null;
      } catch (error) {
        this.#policyHash = null;
        this.#deps.errors.report(error);
      }
    }
    this.#pendingPolicy = { set: policySet };
  }

  #writePolicySet(policySet: unknown): void {
    const { store, org } = this.#deps;
    try {
      const draft = policySetDraft({ org, policySet, id: newId("evt") });
      const hash = (JSON.parse(draft.dataJson) as { hash: string }).hash;
      if (hash === this.#policyHash) return;
      store.append(draft);
      this.#policyHash = hash;
    } catch (error) {
      this.#deps.errors.report(error);
    }
  }

  /** The value as it may be recorded: redacted; `"[unredactable]"` when redaction fails (never recorded raw). */
  redact(value: unknown): unknown {
    try {
      return this.#deps.redact(value);
    } catch (error) {
      this.#deps.errors.report(error);
      return "[unredactable]";
    }
  }

  /**
   * The value redacted and serialized for a row, cut to `maxRecordedBytes` with a marker that gives
   * the original size; with the value to put in events (the marker when cut). Undefined stays undefined.
   */
  recordable(value: unknown): { value: unknown; json: string | null } {
    if (value === undefined) return { value: undefined, json: null };
    const redacted = this.redact(value);
    let json: string;
    try {
      json = JSON.stringify(redacted ?? null);
    } catch (error) {
      this.#deps.errors.report(error);
      const marker = { "[unrecordable]": error instanceof Error ? error.message : String(error) };
      return { value: marker, json: JSON.stringify(marker) };
    }
    const max = this.#deps.maxRecordedBytes;
    // Bytes, not characters: a cheap bound first (UTF-8 takes at most 3 bytes per UTF-16 unit).
    if (json.length * 3 <= max) return { value: redacted, json };
    const bytes = Buffer.byteLength(json);
    if (bytes <= max) return { value: redacted, json };
    const marker = { "[truncated]": `${bytes} bytes, recorded up to ${max}`, preview: Buffer.from(json).subarray(0, Math.max(0, max - 128)).toString("utf8") };
    return { value: marker, json: JSON.stringify(marker) };
  }

  /** An error as it is recorded: name, message and (for Warden's errors) code. */
  static serializeError(error: unknown): unknown {
    if (error instanceof Error) {
      const out: Record<string, unknown> = { name: error.name, message: error.message };
      if (WardenError.isInstance(error)) out.code = error.code;
      return out;
    }
    return error;
  }
}
