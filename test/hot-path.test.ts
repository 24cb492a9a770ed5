// The governed call's fast paths give exactly what the general paths give: canonical JSON written
// without tracking ancestors, redaction's allocation-free scan of clean payloads, ids from a hex pool,
// raceAbort's synchronous answer, events built only for listeners.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { Warden, createRedactor, raceAbort, type WardenEvent } from "agent-warden";
import { canonicalJson } from "../src/internal/canonical.js";
import { newId } from "../src/internal/ids.js";
import { SqliteStore } from "../src/store/sqlite-store.js";

/** Canonical JSON as the general writer gives it (the definition, tracking every ancestor): the oracle. */
function reference(value: unknown, ancestors: object[] = []): string {
  if (value === null || typeof value !== "object") {
    if (typeof value === "number" && !Number.isFinite(value)) return "null";
    if (typeof value === "bigint") return JSON.stringify(`${value}n`);
    return JSON.stringify(value) ?? "null";
  }
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (ancestors.includes(value)) return JSON.stringify("[circular]");
  ancestors.push(value);
  try {
    if (Array.isArray(value)) return `[${value.map((item) => (item === undefined ? "null" : reference(item, ancestors))).join(",")}]`;
    const keys = Object.keys(value).sort();
    let out = "{";
    for (const key of keys) {
      const item = (value as Record<string, unknown>)[key];
      if (item === undefined || typeof item === "function" || typeof item === "symbol") continue;
      if (out.length > 1) out += ",";
      out += `${JSON.stringify(key)}:${reference(item, ancestors)}`;
    }
    return `${out}}`;
  } finally {
    ancestors.pop();
  }
}

/** A deterministic generator, so a failure reproduces. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const awkwardStrings = ["", "plain", 'quote "inside"', "back\\slash", "tab\there", "nul\u0000", "line\u2028sep", "é", "😀", "\ud800 lone high", "lone low \udc00", "x".repeat(70) + '"', "y".repeat(200), "10", "9", "-1", "__proto__x", "B", "a", "Z"];

function arbitrary(next: () => number, depth: number): unknown {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
  const roll = next();
  if (depth > 4 || roll < 0.45) {
    return pick<unknown>([0, -0, 1.5, -2e-7, 1e21, Number.NaN, Number.POSITIVE_INFINITY, 12345678901234567890n, true, false, null, undefined, () => 1, Symbol("s"), new Date(0), ...awkwardStrings]);
  }
  if (roll < 0.7) {
    const list: unknown[] = [];
    const length = Math.floor(next() * 6);
    for (let i = 0; i < length; i++) if (next() > 0.1) list[i] = arbitrary(next, depth + 1);
    list.length = length; // holes stay holes
    return list;
  }
  const record: Record<string, unknown> = next() < 0.1 ? (Object.create(null) as Record<string, unknown>) : {};
  const size = Math.floor(next() * (next() < 0.05 ? 40 : 7));
  for (let i = 0; i < size; i++) record[pick(awkwardStrings) + (next() < 0.5 ? "" : String(Math.floor(next() * 12)))] = arbitrary(next, depth + 1);
  return record;
}

describe("canonical JSON's fast writer", () => {
  it("writes what the general writer writes on tricky values", () => {
    class Point {
      constructor(
        readonly x: number,
        readonly y: number,
      ) {}
    }
    const shared = { s: 1 };
    const cyclic: Record<string, unknown> = { name: "loop", list: [1, 2] };
    cyclic.self = cyclic;
    (cyclic.list as unknown[]).push(cyclic);
    const cyclicList: unknown[] = [1];
    cyclicList.push({ back: cyclicList });
    let deep: unknown = { leaf: "bottom" };
    for (let i = 0; i < 80; i++) deep = i % 2 === 0 ? { [`k${i}`]: deep, z: i } : [deep, i];
    const wide: Record<string, number> = {};
    for (let i = 60; i > 0; i--) wide[`key_${i}`] = i;
    const values: unknown[] = [
      { b: 1, a: 2, c: { z: [3, 2, 1], y: null } },
      { 10: "ten", 9: "nine", 1: "one", b: "bee", "-1": "minus" },
      { "é": 1, e: 2, "😀": 3, "\ud7ff": 4, "\ue000": 5, "Z": 6, a: 7 },
      { [awkwardStrings.join("")]: awkwardStrings },
      [undefined, () => 1, Symbol("x"), null, , 5], // eslint-disable-line no-sparse-arrays
      { u: undefined, f: () => 1, s: Symbol("y"), n: null },
      { big: 2n ** 70n, negative: -5n, nan: Number.NaN, inf: -Infinity, zero: -0, tiny: 5e-324 },
      { when: new Date(Date.UTC(2026, 0, 2, 3, 4, 5)) },
      { boxed: new Number(3), text: new String("ab"), point: new Point(1, 2), map: new Map([[1, 2]]) },
      { withToJSON: { toJSON: () => "ignored", kept: 1 } },
      Object.assign(Object.create(null) as object, { b: 1, a: 2 }),
      { one: shared, two: shared, list: [shared, shared] },
      cyclic,
      cyclicList,
      deep,
      wide,
      "top-level string",
      42,
      undefined,
      () => "function",
      7n,
    ];
    for (const value of values) expect(canonicalJson(value)).toBe(reference(value));
  });

  it("writes what the general writer writes on 5,000 generated values", () => {
    const next = random(18);
    for (let i = 0; i < 5000; i++) {
      const value = arbitrary(next, 0);
      expect(canonicalJson(value)).toBe(reference(value));
    }
  });

  it("writes member names it remembers as the general writer does: escaped, long, and past the names it keeps", () => {
    const names = ['"quoted"', "back\\slash", "line\nbreak", "lone \ud800", "naïve", "x".repeat(65), "x".repeat(64), ""];
    for (let i = 0; i < 5000; i++) names.push(`name_${i}`);
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < names.length; i += 50) {
        const value = Object.fromEntries(names.slice(i, i + 50).map((name, j) => [name, j % 2 === 0 ? j : { [name]: null }]));
        expect(canonicalJson(value)).toBe(reference(value));
      }
    }
  });

  it("throws where the general writer throws (an invalid Date)", () => {
    expect(() => reference({ when: new Date(Number.NaN) })).toThrow(RangeError);
    expect(() => canonicalJson({ when: new Date(Number.NaN) })).toThrow(RangeError);
  });
});

describe("redaction's clean-payload scan", () => {
  const redact = createRedactor();
  // A rule that never matches sends every value through the full walk: the oracle.
  const walked = createRedactor({ rules: [{ path: "$.never_present_here", action: "remove" }] });

  it("returns a clean plain payload itself, unchanged", () => {
    const clean = { id: 7, customer: "c_12", items: [{ sku: "A-1", qty: 2 }], note: "deliver after 5pm please", flags: { express: true } };
    expect(redact(clean)).toBe(clean);
    expect(JSON.stringify(clean)).toBe(JSON.stringify(walked(clean)));
  });

  it("still redacts every secret in small plain payloads", () => {
    const cases: unknown[] = [
      { password: "hunter2" },
      { nested: { deeper: { api_key: "k" } } },
      [{ ok: 1 }, { authorization: "Basic abc" }],
      { note: "use Bearer abcdefghijklmnop1234 for the call" },
      { card: "4111 1111 1111 1111" },
      { list: ["fine", "sk-proj1234567890abcdefghij"] },
      { big: 12n },
      { fn: () => 1 },
      { when: new Date(0) },
      { custom: { toJSON: () => ({ password: "from toJSON" }) } },
    ];
    for (const value of cases) {
      const out = redact(value);
      expect(out).not.toBe(value);
      expect(JSON.stringify(out)).toBe(JSON.stringify(walked(value)));
    }
    expect(JSON.stringify(redact({ nested: { deeper: { api_key: "k" } } }))).not.toContain('"k"');
    expect(JSON.stringify(redact({ note: "use Bearer abcdefghijklmnop1234 for the call" }))).toContain("[REDACTED]");
  });

  it("gives what the full walk gives on generated payloads, past its own bounds too", () => {
    const next = random(7);
    const secretish = ["password", "token", "Bearer abcdefghijklmnop1234", "sk-abcdefghijklmnopqrstu", "4111111111111111", "ok", "name"];
    for (let i = 0; i < 2000; i++) {
      const value = arbitrary(next, 0) as unknown;
      const holder: Record<string, unknown> = { value };
      if (next() < 0.3) holder[secretish[Math.floor(next() * secretish.length)]!] = secretish[Math.floor(next() * secretish.length)];
      expect(JSON.stringify(redact(holder))).toBe(JSON.stringify(walked(holder)));
    }
    // Deeper and larger than the scan looks: the walk decides, and still masks.
    let deep: Record<string, unknown> = { password: "deep secret" };
    for (let i = 0; i < 12; i++) deep = { level: deep };
    expect(JSON.stringify(redact(deep))).not.toContain("deep secret");
    const large = Array.from({ length: 600 }, (_, i) => ({ i }));
    large.push({ i: -1, secret: "late secret" } as never);
    expect(JSON.stringify(redact(large))).not.toContain("late secret");
  });

  it("keeps key verdicts per redactor: extra keys of one redactor do not leak into another", () => {
    const iban = createRedactor({ keys: ["iban"] });
    expect(iban({ iban: "DE89370400440532013000" })).toEqual({ iban: "[REDACTED]" });
    expect(redact({ iban: "DE89370400440532013000" })).toEqual({ iban: "DE89370400440532013000" });
  });
});

describe("ids", () => {
  it("are prefixed, time-ordered, 80 random bits, and unique across pool refills", () => {
    const ids = Array.from({ length: 5000 }, () => newId("tc"));
    for (const id of ids) expect(id).toMatch(/^tc_[0-9a-f]{32}$/);
    expect(new Set(ids).size).toBe(ids.length);
    const clocks = ids.map((id) => Number.parseInt(id.slice(3, 15), 16));
    expect(clocks).toEqual([...clocks].sort((a, b) => a - b));
    expect(Math.abs(clocks.at(-1)! - Date.now())).toBeLessThan(60_000);
    // Random parts differ in every position over many ids (not a counter).
    const randoms = ids.map((id) => id.slice(15));
    for (let position = 0; position < 20; position++) expect(new Set(randoms.map((r) => r[position])).size).toBeGreaterThan(8);
  });
});

describe("raceAbort", () => {
  it("answers a synchronous tool's value, and its throw as a rejection", async () => {
    const controller = new AbortController();
    await expect(raceAbort(controller.signal, () => 5)).resolves.toBe(5);
    await expect(
      raceAbort(controller.signal, () => {
        throw new Error("sync failure");
      }),
    ).rejects.toThrow("sync failure");
  });

  it("rejects with the reason when the tool aborts the signal itself, synchronously or later", async () => {
    const controller = new AbortController();
    const reason = new Error("halted meanwhile");
    await expect(
      raceAbort(controller.signal, () => {
        controller.abort(reason);
        return "too late";
      }),
    ).rejects.toBe(reason);
    const later = new AbortController();
    let settle: (value: string) => void = () => {};
    const pending = raceAbort(later.signal, () => new Promise<string>((resolve) => (settle = resolve)));
    later.abort(reason);
    await expect(pending).rejects.toBe(reason);
    settle("ignored");
  });

  it("leaves no listener behind on the signal once the tool settles", async () => {
    const controller = new AbortController();
    let added = 0;
    let removed = 0;
    const signal = controller.signal;
    const add = signal.addEventListener.bind(signal);
    const remove = signal.removeEventListener.bind(signal);
    signal.addEventListener = ((...args: Parameters<typeof add>) => (added++, add(...args))) as typeof add;
    signal.removeEventListener = ((...args: Parameters<typeof remove>) => (removed++, remove(...args))) as typeof remove;
    await raceAbort(signal, async () => 1);
    await raceAbort(signal, async () => Promise.reject(new Error("x"))).catch(() => undefined);
    await raceAbort(signal, () => 2);
    expect(added).toBe(2);
    expect(removed).toBe(2);
  });
});

describe("events on the hot path", () => {
  it("reach a listener subscribed after calls were recorded without one, with the ledger's ids", async () => {
    const warden = new Warden({ agentId: "hot", store: ":memory:", policies: { version: 1, default: "allow", policies: [] } });
    try {
      await warden.run({}, (run) => run.tool("quiet", { id: 1 }, () => 1));
      const seen: WardenEvent[] = [];
      const stop = warden.on("*", (event) => seen.push(event));
      let runId = "";
      await warden.run({}, async (run) => {
        runId = run.runId;
        await run.tool("heard", { id: 2, password: "hunter2" }, () => ({ ok: true }));
      });
      stop();
      const called = seen.find((e) => e.type === "tool.called");
      expect(called?.data).toMatchObject({ toolName: "heard", input: { id: 2, password: "[REDACTED]" } });
      const ledger = (await warden.getRun(runId)).events;
      expect(ledger.map((e) => e.id)).toEqual(expect.arrayContaining(seen.filter((e) => e.runId === runId).map((e) => e.id)));
    } finally {
      warden.close();
    }
  });
});

describe("a halt made by another client", () => {
  it("takes effect before this client's writer is waited for, and refuses the next call", async () => {
    const dir = mkdtempSync(join(tmpdir(), "warden-halt-read-"));
    const store = join(dir, "w.db");
    const policies = { version: 1 as const, default: "allow" as const, policies: [] };
    const agent = new Warden({ agentId: "worker", store, policies });
    const operator = new Warden({ agentId: "operator", store, policies });
    // Whether the halt was already in force each time a store committed its queue.
    const haltedAtFlush: boolean[] = [];
    const flushQueue = SqliteStore.prototype.flush;
    const flush = vi.spyOn(SqliteStore.prototype, "flush").mockImplementation(function (this: SqliteStore) {
      haltedAtFlush.push(agent.haltedFor() !== undefined);
      flushQueue.call(this);
    });
    try {
      await agent.run({}, async (run) => {
        for (let i = 0; i < 200; i++) await run.tool("write_row", { i }, () => i);
        // Let the writer start, then give it work: the halt must not wait for that work to commit.
        await new Promise((resolve) => setTimeout(resolve, 20));
        for (let i = 0; i < 200; i++) await run.tool("write_row", { i }, () => i);
        operator.halt({ reason: "stop the worker", agentId: "worker" });
        haltedAtFlush.length = 0;
        // The agent's halt poll (every 25 ms) reads the new halts, applies them, then commits what came before.
        await vi.waitFor(() => expect(agent.haltedFor()).toBeDefined(), { timeout: 2000, interval: 10 });
        await vi.waitFor(() => expect(haltedAtFlush.length).toBeGreaterThan(0), { timeout: 2000, interval: 10 });
        expect(haltedAtFlush.every(Boolean)).toBe(true);
        await expect(run.tool("write_row", { i: -1 }, () => -1)).rejects.toMatchObject({ code: "halted" });
      });
    } catch (error) {
      // The run itself ends failed (halted): what is asserted above is what counts.
      if (!(error instanceof Error && /halted|stop the worker/.test(error.message))) throw error;
    } finally {
      flush.mockRestore();
      agent.close();
      operator.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
