import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterAll, describe, expect, it } from "vitest";
import { openLedger, Warden } from "agent-warden";
import { newId } from "../src/internal/ids.js";
import { loadOrCreateKey } from "../src/ledger/keys.js";
import { SqliteStore } from "../src/store/sqlite-store.js";
import { tempDir, TS_NODE } from "./fixtures/proc.js";

// A store file's commits run on a writer thread that owns the write connection (`storeWriter: "worker"`).

const temp = tempDir("warden-writer-");
afterAll(() => temp.cleanup());
let stores = 0;
const freshStore = () => join(temp.dir, `s${++stores}`, "warden.db");

function count(file: string, table: string): number {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    return Number((db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n);
  } finally {
    db.close();
  }
}

/** The tool calls a file records: rows, and the fast calls whose folded ledger entry is their only record. */
const TOOL_CALLS = "(SELECT id FROM tool_calls UNION ALL SELECT tool_call_id FROM ledger WHERE type = 'tool.call' AND tool_call_id NOT IN (SELECT id FROM tool_calls))";

async function calls(warden: Warden, n: number): Promise<void> {
  await warden.run({ task: "t" }, async (run) => {
    for (let i = 0; i < n; i++) await run.tool("read_order", { id: i }, () => ({ ok: i }));
  });
}

describe("the store's writer thread", () => {
  it("a commit that waits for the write lock does not hold the event loop", async () => {
    const file = freshStore();
    const warden = new Warden({ agentId: "a", store: file });
    try {
      await calls(warden, 10);
      await new Promise((resolve) => setTimeout(resolve, 20));
      warden.flush();
      expect(count(file, TOOL_CALLS)).toBe(10);
      // Another connection holds the write lock: the writer thread waits for it, this thread carries on.
      const holder = new DatabaseSync(file);
      holder.exec("BEGIN IMMEDIATE");
      try {
        await calls(warden, 50);
        let ticks = 0;
        const timer = setInterval(() => ticks++, 5);
        await new Promise((resolve) => setTimeout(resolve, 300));
        clearInterval(timer);
        expect(ticks).toBeGreaterThanOrEqual(10);
        expect(count(file, TOOL_CALLS)).toBe(10);
      } finally {
        holder.exec("COMMIT");
        holder.close();
      }
      warden.flush();
      expect(count(file, TOOL_CALLS)).toBe(60);
    } finally {
      warden.close();
    }
  });

  it("what flush() returned for is committed; close() drains the rest, and the ledger verifies", async () => {
    const file = freshStore();
    const warden = new Warden({ agentId: "a", store: file });
    await calls(warden, 30);
    warden.flush();
    expect(count(file, TOOL_CALLS)).toBe(30);
    await calls(warden, 70);
    warden.close();
    expect(count(file, TOOL_CALLS)).toBe(100);
    const { ledger, close } = openLedger(file);
    try {
      expect(ledger.verify({ full: true })).toMatchObject({ ok: true, coverage: { uncovered: 0 } });
    } finally {
      close();
    }
  });

  it("a process that exits without close() leaves what it recorded committed", () => {
    const file = freshStore();
    const script = `
      import { Warden } from ${JSON.stringify(join(process.cwd(), "src/index.ts"))};
      const warden = new Warden({ agentId: "exiting", store: ${JSON.stringify(file)} });
      await warden.run({}, async (run) => { for (let i = 0; i < 200; i++) await run.tool("t", { i }, () => i); });
      await new Promise((resolve) => setTimeout(resolve, 10));
      await warden.run({}, async (run) => { for (let i = 0; i < 50; i++) await run.tool("t", { i }, () => i); });
      process.exit(0);`;
    const child = spawnSync(process.execPath, [...TS_NODE, "--input-type=module", "-e", script], { encoding: "utf8", timeout: 60_000 });
    expect(child.status, child.stderr).toBe(0);
    expect(count(file, TOOL_CALLS)).toBe(250);
    expect(count(file, "runs")).toBe(2);
  });

  it("back-pressure is bounded and visible: an awaiting recorder waits without holding the event loop, and it is said once", async () => {
    const file = freshStore();
    const errors: unknown[] = [];
    const signer = loadOrCreateKey(join(file, "..", "keys", "ledger.pem"));
    const store = new SqliteStore({ path: file, signer, checkpointEvery: 1000, checkpointIntervalMs: 60_000, maxBatch: 50, writer: "worker", maxPending: 200, onError: (error) => errors.push(error) });
    let most = 0;
    let waits = 0;
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    for (let i = 0; i < 5000; i++) {
      const behind = store.backpressure();
      if (behind !== undefined) {
        waits++;
        await behind;
        // Never more than the bound once a wait is over: the writer caught up to half of it.
        expect(store.pendingWrites).toBeLessThanOrEqual(200);
      }
      store.append({ id: newId("evt"), ts: Date.now(), type: "tool.called", org: "default", agentId: "a", runId: "run_1", stepId: null, toolCallId: null, actor: null, dataJson: `{"i":${i}}` });
      most = Math.max(most, store.pendingWrites);
    }
    clearInterval(timer);
    store.close();
    expect(waits).toBeGreaterThan(0);
    // The loop ran while the appends waited for the writer (a blocking wait would starve the interval).
    expect(ticks).toBeGreaterThan(0);
    expect(most).toBeLessThanOrEqual(200 + 50);
    expect(errors).toHaveLength(1);
    expect(String(errors[0])).toMatch(/writer is \d+ writes behind \(at most 200 may wait\): governed calls wait/);
    expect(count(file, "ledger")).toBe(5000);
  });

  it("a recorder that never awaits is still bounded: past four times the bound, the hand-over waits", () => {
    const file = freshStore();
    const errors: unknown[] = [];
    const store = new SqliteStore({ path: file, checkpointEvery: 1000, checkpointIntervalMs: 60_000, maxBatch: 50, writer: "worker", maxPending: 200, onError: (error) => errors.push(error) });
    let most = 0;
    for (let i = 0; i < 5000; i++) {
      store.append({ id: newId("evt"), ts: Date.now(), type: "tool.called", org: "default", agentId: "a", runId: "run_1", stepId: null, toolCallId: null, actor: null, dataJson: `{"i":${i}}` });
      most = Math.max(most, store.pendingWrites);
    }
    store.close();
    expect(most).toBeLessThanOrEqual(4 * 200 + 50);
    expect(errors.length).toBeLessThanOrEqual(1);
    expect(count(file, "ledger")).toBe(5000);
  });

  it("governed calls wait for a writer held back by another connection's lock, and the event loop keeps turning meanwhile", async () => {
    const file = freshStore();
    const errors: unknown[] = [];
    const warden = new Warden({ agentId: "a", store: file, storeMaxPending: 300, onError: (error) => errors.push(error) });
    try {
      await calls(warden, 5);
      warden.flush();
      const holder = new DatabaseSync(file);
      holder.exec("BEGIN IMMEDIATE");
      let released = false;
      let ticksWhileHeld = 0;
      const timer = setInterval(() => ticksWhileHeld++, 1);
      // The writer cannot commit: once more than the bound is behind, calls wait, and only the lock's release lets them on.
      const release = new Promise<void>((resolve) => {
        const poll = setInterval(() => {
          if (errors.some((e) => /writes behind/.test(String(e)))) {
            clearInterval(poll);
            const ticks = ticksWhileHeld;
            setTimeout(() => {
              // Calls are waiting, not running: the count in memory stopped growing while the loop ran.
              expect(ticksWhileHeld).toBeGreaterThan(ticks);
              released = true;
              holder.exec("COMMIT");
              holder.close();
              resolve();
            }, 50);
          }
        }, 5);
      });
      // Three writes a call: well past the bound of 300. The loop turns between calls, as an agent's I/O turns it.
      const n = 400;
      await warden.run({ task: "t" }, async (run) => {
        for (let i = 0; i < n; i++) {
          await run.tool("read_order", { id: i }, () => ({ ok: i }));
          await new Promise((resolve) => setImmediate(resolve));
        }
      });
      // The calls could only finish once the writer could commit again.
      expect(released).toBe(true);
      clearInterval(timer);
      await release;
      warden.flush();
      expect(count(file, TOOL_CALLS)).toBe(n + 5);
    } finally {
      warden.close();
    }
  });

  it("the writer thread starts in the turn after the first write: never for a store only opened, and nothing waits for its boot", async () => {
    const file = freshStore();
    const turn = () => new Promise((resolve) => setImmediate(resolve));
    const opened = new SqliteStore({ path: file, checkpointEvery: 1000, checkpointIntervalMs: 60_000, writer: "worker", onError: (error) => { throw error; } });
    await turn();
    await turn();
    // Opened, read, never written: no thread.
    expect(opened.get<{ n: number }>("SELECT count(*) AS n FROM ledger")?.n).toBe(0);
    expect(opened.writerStarted).toBe(false);
    opened.close();
    expect(opened.writerStarted).toBe(false);

    const signer = loadOrCreateKey(join(file, "..", "keys", "ledger.pem"));
    const store = new SqliteStore({ path: file, signer, checkpointEvery: 1000, checkpointIntervalMs: 60_000, writer: "worker", onError: (error) => { throw error; } });
    const entry = (i: number) => ({ id: newId("evt"), ts: Date.now(), type: "tool.called", org: "default", agentId: "a", runId: "run_1", stepId: null, toolCallId: null, actor: null, dataJson: `{"i":${i}}` });
    store.append(entry(0));
    // Not on the path of the write that asked for it.
    expect(store.writerStarted).toBe(false);
    await turn();
    expect(store.writerStarted).toBe(true);
    // Booting, handed nothing yet: a read commits on this thread rather than waiting for the boot.
    expect(store.get<{ n: number }>("SELECT count(*) AS n FROM ledger")?.n).toBe(1);
    store.append(entry(1));
    // Closed before anything was handed over: the thread is let go, and close() commits what was queued.
    store.close();
    expect(store.writerStarted).toBe(false);
    expect(count(file, "ledger")).toBe(2);
    const { ledger, close } = openLedger(file);
    try {
      expect(ledger.verify({ full: true })).toMatchObject({ ok: true, coverage: { uncovered: 0 } });
    } finally {
      close();
    }
  });

  it("a client that never writes, or writes and ends at once, exits on its own with what it recorded committed", () => {
    const file = freshStore();
    const script = `
      import { Warden } from ${JSON.stringify(join(process.cwd(), "src/index.ts"))};
      const idle = new Warden({ agentId: "idle", store: ${JSON.stringify(join(temp.dir, "idle", "warden.db"))} });
      idle.check({ tool: "t", args: {} });
      const warden = new Warden({ agentId: "brief", store: ${JSON.stringify(file)} });
      await warden.run({}, async (run) => { await run.tool("t", { i: 1 }, () => 1); });`;
    // No close(), no exit(): the process ends when its own work does (the writer thread never holds it).
    const child = spawnSync(process.execPath, [...TS_NODE, "--input-type=module", "-e", script], { encoding: "utf8", timeout: 60_000 });
    expect(child.status, child.stderr).toBe(0);
    expect(count(file, TOOL_CALLS)).toBe(1);
  });

  // Node's permission model without --allow-worker: `new Worker` throws. (The tsx loader itself needs a thread.)
  it.skipIf(TS_NODE.includes("tsx"))("a process that may not start threads commits on its own thread, and says so once", () => {
    const file = freshStore();
    const script = `
      import { Warden } from ${JSON.stringify(join(process.cwd(), "src/index.ts"))};
      const errors = [];
      const warden = new Warden({ agentId: "sandboxed", store: ${JSON.stringify(file)}, onError: (error) => errors.push(String(error)) });
      await warden.run({}, async (run) => {
        for (let i = 0; i < 20; i++) {
          await run.tool("t", { i }, () => i);
          await new Promise((resolve) => setImmediate(resolve));
        }
      });
      await new Promise((resolve) => setTimeout(resolve, 20));
      warden.close();
      process.stdout.write(JSON.stringify(errors));`;
    const child = spawnSync(process.execPath, ["--permission", "--allow-fs-read=*", "--allow-fs-write=*", ...TS_NODE, "--input-type=module", "-e", script], { encoding: "utf8", timeout: 60_000 });
    expect(child.status, child.stderr).toBe(0);
    const errors = JSON.parse(child.stdout) as string[];
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/the store's writer thread could not start, so the store commits on its own thread: .*--allow-worker/);
    expect(count(file, TOOL_CALLS)).toBe(20);
  });

  it("storeWriter: \"inline\" commits on the client's own thread", async () => {
    const file = freshStore();
    const warden = new Warden({ agentId: "a", store: file, storeWriter: "inline" });
    try {
      await calls(warden, 20);
      warden.flush();
      expect(count(file, TOOL_CALLS)).toBe(20);
      expect(warden.ledger.verify()).toMatchObject({ ok: true });
    } finally {
      warden.close();
    }
  });
});
