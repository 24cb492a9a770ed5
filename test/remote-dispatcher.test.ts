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

describe("event dispatcher with several batches in flight", () => {
  /** A server whose answers the test releases one by one; `refuse` answers 503 instead. */
  function heldServer() {
    const waiting: Array<{ batch: WardenEvent[]; answer: (refuse?: boolean) => void }> = [];
    const delivered: string[] = [];
    let peak = 0;
    const send = (batch: WardenEvent[]) =>
      new Promise<{ accepted: number }>((resolve, reject) => {
        waiting.push({
          batch,
          answer: (refuse) => {
            if (refuse) return reject(new RemoteError("503 busy", { status: 503, retryable: true }));
            delivered.push(...batch.map((e) => e.id));
            resolve({ accepted: batch.length });
          },
        });
        peak = Math.max(peak, waiting.length);
      });
    const next = async () => {
      while (waiting.length === 0) await new Promise((resolve) => setImmediate(resolve));
      return waiting.shift()!;
    };
    return { send, next, delivered, peak: () => peak, waiting };
  }

  it("sends up to maxInflight batches of the queue at once and delivers every event once", async () => {
    const server = heldServer();
    const dispatcher = new EventDispatcher({ send: server.send, flushInterval: 60_000, maxQueue: 1000, maxBatch: 10, maxInflight: 3, spool: undefined, deadLetters: undefined, onError: () => {} });
    for (let n = 0; n < 95; n++) dispatcher.enqueue(event(n));
    const flushed = dispatcher.flush();
    // Three batches go out before any is answered; answers in another order than sending.
    for (let round = 0; round < 10; round++) {
      while (server.waiting.length < Math.min(3, 10 - round)) await new Promise((resolve) => setImmediate(resolve));
      (server.waiting.length > 1 ? server.waiting.splice(1, 1)[0]! : (await server.next())).answer();
    }
    await flushed;
    expect(server.peak()).toBe(3);
    expect(server.delivered.length).toBe(95);
    expect(new Set(server.delivered)).toEqual(new Set(Array.from({ length: 95 }, (_, n) => `evt_${n}`)));
    expect(dispatcher.stats).toMatchObject({ sent: 95, queued: 0, dropped: 0, offline: false });
    dispatcher.close();
  });

  it("a batch the server could not take while another was taken is kept in the spool and sent again, once", async () => {
    const server = heldServer();
    const spool = new Spool(join(dir, "spool"), 1024 * 1024);
    const errors: unknown[] = [];
    const dispatcher = new EventDispatcher({ send: server.send, flushInterval: 60_000, maxQueue: 1000, maxBatch: 10, maxInflight: 2, spool, deadLetters: undefined, onError: (e) => errors.push(e) });
    for (let n = 0; n < 20; n++) dispatcher.enqueue(event(n));
    const flushed = dispatcher.flush();
    const [a, b] = [await server.next(), await server.next()];
    b.answer();
    a.answer(true);
    await flushed;
    // The refused batch waits in the spool; the one taken is not sent again.
    expect(server.delivered).toEqual(b.batch.map((e) => e.id));
    expect(spool.hasData).toBe(true);
    expect(dispatcher.stats.offline).toBe(true);
    expect(errors.length).toBe(1);
    dispatcher.nudge();
    (await server.next()).answer();
    await dispatcher.flush();
    expect(server.delivered.sort()).toEqual(Array.from({ length: 20 }, (_, n) => `evt_${n}`).sort());
    expect(spool.hasData).toBe(false);
    dispatcher.close();
  });
});

describe("event dispatcher request bodies", () => {
  it("sends a batch of plain events as the events' JSON joined, and a batch with a refused event without it", async () => {
    const bodies: string[] = [];
    const refused: string[] = [];
    const dispatcher = new EventDispatcher({
      send: async (batch, body) => {
        bodies.push(body);
        // The body is what the events are, in order, as JSON.
        expect(JSON.parse(body)).toEqual({ events: JSON.parse(JSON.stringify(batch)) });
        return { accepted: batch.length };
      },
      flushInterval: 60_000,
      maxQueue: 100,
      maxBatch: 10,
      spool: undefined,
      deadLetters: { record: (items: ReadonlyArray<{ event: WardenEvent }>) => void refused.push(...items.map((item) => item.event.id)) } as never,
      onError: () => {},
    });
    const first = [0, 1, 2].map(event);
    for (const e of first) dispatcher.enqueue(e);
    await dispatcher.flush();
    expect(bodies).toEqual([`{"events":[${first.map((e) => JSON.stringify(e)).join(",")}]}`]);
    // One event the wire refuses (an id too long) is set aside; the rest goes.
    dispatcher.enqueue(event(3));
    dispatcher.enqueue({ ...event(4), id: "x".repeat(300) });
    dispatcher.enqueue(event(5));
    await dispatcher.flush();
    expect(refused).toEqual(["x".repeat(300)]);
    expect(JSON.parse(bodies[1]!).events.map((e: WardenEvent) => e.id)).toEqual(["evt_3", "evt_5"]);
    await dispatcher.shutdown();
  });
});
