import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterAll, describe, expect, it, vi } from "vitest";
import { newId } from "../src/internal/ids.js";
import { SqliteStore } from "../src/store/sqlite-store.js";
import { tempDir } from "./fixtures/proc.js";

// A process where no thread can be started (a sandbox, a limit reached): the store must go on committing.
vi.mock("node:worker_threads", async (importOriginal) => {
  const actual = await importOriginal<typeof import("node:worker_threads")>();
  return {
    ...actual,
    Worker: class {
      constructor() {
        throw new Error("no threads here");
      }
    },
  };
});

const temp = tempDir("warden-writer-start-");
afterAll(() => temp.cleanup());

describe("the store's writer thread, when none can start", () => {
  it("leaves the store committing on its own thread, and says so once", async () => {
    const file = join(temp.dir, "warden.db");
    const errors: unknown[] = [];
    const store = new SqliteStore({ path: file, checkpointEvery: 1000, checkpointIntervalMs: 60_000, writer: "worker", onError: (error) => errors.push(error) });
    const entry = (i: number) => ({ id: newId("evt"), ts: Date.now(), type: "tool.called", org: "default", agentId: "a", runId: "run_1", stepId: null, toolCallId: null, actor: null, dataJson: `{"i":${i}}` });
    try {
      store.append(entry(0));
      await new Promise((resolve) => setImmediate(resolve));
      expect(store.writerStarted).toBe(false);
      expect(errors).toHaveLength(1);
      expect(String(errors[0])).toMatch(/writer thread could not start: no threads here; the store commits on its own thread/);
      store.append(entry(1));
      // The commit window closes: this thread commits, with nothing handed anywhere.
      await new Promise((resolve) => setTimeout(resolve, 30));
      const db = new DatabaseSync(file, { readOnly: true });
      try {
        expect(db.prepare("SELECT count(*) AS n FROM ledger").get()).toEqual({ n: 2 });
      } finally {
        db.close();
      }
      store.append(entry(2));
    } finally {
      store.close();
    }
    expect(errors).toHaveLength(1);
    const db = new DatabaseSync(file, { readOnly: true });
    try {
      expect(db.prepare("SELECT count(*) AS n FROM ledger").get()).toEqual({ n: 3 });
    } finally {
      db.close();
    }
  });
});
