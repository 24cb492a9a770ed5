// The dispatcher after close(): what it holds stays in the spool, and flush() returns at once.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { RemoteError, type WardenEvent } from "agent-warden";
import { EventDispatcher } from "../src/remote/dispatcher.js";
import { Spool } from "../src/remote/spool.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "warden-dispatcher-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const event = (n: number): WardenEvent => ({ id: `evt_${n}`, type: "tool.called", ts: Date.now(), org: "default", agentId: "a", runId: "run_1", stepId: null, toolCallId: `tc_${n}`, actor: null, data: { toolName: "t" } });

describe("event dispatcher after close", () => {
  it("flush() returns at once, sends nothing, and leaves the spool as it was", async () => {
    let sends = 0;
    const spool = new Spool(join(dir, "spool"), 1024 * 1024);
    const dispatcher = new EventDispatcher({
      send: async () => {
        sends++;
        throw new RemoteError("unreachable", { retryable: true });
      },
      flushInterval: 60_000,
      maxQueue: 100,
      maxBatch: 10,
      spool,
      deadLetters: undefined,
      onError: () => {},
    });
    for (let n = 0; n < 5; n++) dispatcher.enqueue(event(n));
    dispatcher.close();
    const bytes = spool.bytes;
    expect(bytes).toBeGreaterThan(0);
    await dispatcher.flush();
    await dispatcher.shutdown();
    expect(sends).toBe(0);
    expect(spool.bytes).toBe(bytes);
  });
});
