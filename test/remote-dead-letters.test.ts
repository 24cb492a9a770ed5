// Remote mode against hostile input: one event the control plane refuses (nested 40 levels deep, an
// id over 256 characters, an output over 5 MB) inside a batch of ~800 good ones. Every good event
// reaches a real control plane, exactly once; the bad one is set aside in the dead-letter file with
// the reason. Once through the client's own check (the same schema the server validates with), once
// through a client that does not know the limits, so the server's refusal is split down to the event.
import { appendFileSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { RemoteError, Warden, type WardenEvent } from "agent-warden";
import { createWardenServer, type WardenServer } from "agent-warden/server";
import { DeadLetterFile } from "../src/remote/dead-letters.js";
import { EventDispatcher } from "../src/remote/dispatcher.js";
import { RemoteHttp } from "../src/remote/http.js";
import { Spool } from "../src/remote/spool.js";
import { wireEvents } from "../src/wire/event.js";
import { MAX_EVENT_BYTES, MAX_ID_LENGTH, MAX_JSON_DEPTH } from "../src/wire/limits.js";

const { IngestResponseSchema } = wireEvents();

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "warden-dead-letters-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const nest = (levels: number): unknown => {
  let value: unknown = { leaf: true };
  for (let i = 1; i < levels; i++) value = { next: value };
  return value;
};
const HUGE = "x".repeat(MAX_EVENT_BYTES + 512 * 1024);

describe("remote mode: one refused event never takes its batch with it", () => {
  let server: WardenServer;
  let url: string;
  let admin: string;
  let agentKey: string;

  beforeAll(async () => {
    server = createWardenServer({ db: ":memory:", console: false, heartbeatInterval: 60_000, onError: () => {} });
    admin = (await server.store.createKey({ org: "acme", role: "admin" })).key;
    agentKey = (await server.store.createKey({ org: "acme", role: "agent" })).key;
    url = (await server.listen(0)).url;
  });
  afterAll(async () => {
    await server.close();
  });

  /** How many times the control plane holds each event id. */
  const serverCounts = async (): Promise<Map<string, number>> => {
    const response = await fetch(`${url}/v1/ledger/export?limit=1000000`, { headers: { authorization: `Bearer ${admin}` } });
    const counts = new Map<string, number>();
    for (const line of (await response.text()).split("\n").filter(Boolean)) {
      const id = (JSON.parse(line) as { id: string }).id;
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    return counts;
  };

  const cases: Array<{ name: string; bad: (warden: Warden) => Promise<unknown>; reason: RegExp }> = [
    { name: "a tool output nested 40 levels deep", bad: (w) => w.run({ task: "deep" }, (run) => run.tool("read_tree", {}, () => nest(40))), reason: new RegExp(`nested deeper than ${MAX_JSON_DEPTH} levels`) },
    {
      name: `a run id over ${MAX_ID_LENGTH} characters`,
      bad: async (w) => {
        const runId = await w.startRun(`run_${"x".repeat(300)}`);
        await w.completeRun(runId, { ok: true });
      },
      reason: new RegExp(`runId: Too big: expected string to have <=${MAX_ID_LENGTH} characters`),
    },
    { name: "a tool output over 5 MB", bad: (w) => w.run({ task: "huge" }, (run) => run.tool("export_all", {}, () => HUGE)), reason: /bytes as JSON, over the \d+ a request may carry/ },
  ];

  for (const { name, bad, reason } of cases) {
    it(`through the client's own check: ${name}`, async () => {
      const errors: unknown[] = [];
      const warden = new Warden({ agentId: "bot", url, apiKey: agentKey, store: join(dir, "agent.db"), remote: { cacheDir: join(dir, "cache"), flushInterval: "1h", maxBatch: 1000, stream: false }, onError: (e) => errors.push(e) });
      expect(await warden.ready()).toBe(true);
      const recorded: WardenEvent[] = [];
      warden.on("*", (event) => recorded.push(event));
      const good = async (from: number) => {
        for (let i = from; i < from + 100; i++) await warden.run({ task: `good ${i}` }, (run) => run.tool("read_order", { i }, () => ({ order: i })));
      };
      await good(0);
      const before = recorded.length;
      await bad(warden);
      const badIds = new Set(recorded.slice(before).map((e) => e.id));
      await good(100);
      await warden.flush();

      const letters = warden.remote!.deadLetters();
      const refused = letters.map((l) => l.event.id);
      if (refused.length === 0) {
        // Recording already cut what the wire would refuse (redaction's depth bound, the recorded-size
        // cap): nothing needs setting aside, and every event, the cut one included, arrives once.
        const counts = await serverCounts();
        expect(badIds.size).toBeGreaterThan(0);
        expect(recorded.filter((e) => counts.get(e.id) !== 1)).toEqual([]);
        await warden.shutdown();
        return;
      }
      for (const letter of letters) {
        expect(badIds.has(letter.event.id)).toBe(true);
        expect(letter).toMatchObject({ by: "client" });
        expect(letter.reason).toMatch(reason);
      }
      const counts = await serverCounts();
      const goodEvents = recorded.filter((e) => !refused.includes(e.id));
      expect(goodEvents.length).toBeGreaterThan(790);
      expect(goodEvents.filter((e) => counts.get(e.id) !== 1)).toEqual([]);
      for (const id of refused) expect(counts.has(id)).toBe(false);
      expect(warden.remote!.status).toMatchObject({ sent: goodEvents.length, deadLettered: refused.length, dropped: 0 });
      expect(errors.filter((e) => e instanceof RemoteError && e.message.includes("set aside")).length).toBe(1);
      await warden.shutdown();
    });
  }

  it("a key bound to one agent: the one event reported for another agent is set aside, the rest delivered", async () => {
    const boundKey = (await server.store.createKey({ org: "acme", role: "agent", agentId: "bot" })).key;
    const http = new RemoteHttp(url, boundKey, 30_000);
    const dispatcher = new EventDispatcher({
      send: async (_batch, body) => IngestResponseSchema.parse((await http.request("POST", "/v1/events", { rawBody: body })).body),
      flushInterval: 3_600_000,
      maxQueue: 10_000,
      maxBatch: 1000,
      spool: undefined,
      deadLetters: new DeadLetterFile(join(dir, "letters"), 1024 * 1024),
      onError: () => {},
    });
    const events = Array.from({ length: 200 }, (_, n) => ({ ...fake(n, "bound_"), type: "risk.detected" as WardenEvent["type"], runId: null, toolCallId: null }));
    events[77] = { ...events[77]!, agentId: "someone-else" };
    for (const event of events) dispatcher.enqueue(event);
    await dispatcher.flush();
    const counts = await serverCounts();
    expect(events.filter((_, n) => n !== 77).filter((e) => counts.get(e.id) !== 1).map((e) => e.id)).toEqual([]);
    expect(counts.has(events[77]!.id)).toBe(false);
    const letters = new DeadLetterFile(join(dir, "letters"), 1).read();
    expect(letters.map((l) => [l.event.id, l.by, l.code])).toEqual([[events[77]!.id, "server", "insufficient_scope"]]);
    expect([403, undefined]).toContain(letters[0]!.status);
    await dispatcher.shutdown();
  });

  const fake = (n: number, tag: string): WardenEvent => ({ id: `evt_${tag}${String(n).padStart(5, "0")}`, type: "tool.called" as WardenEvent["type"], ts: Date.now(), org: "acme", agentId: "bot", runId: `run_${tag}`, stepId: null, toolCallId: `tc_${tag}${n}`, actor: null, data: { toolName: "read_order", input: { n } } });

  // The server rejects a malformed event on its own (`rejected` in a 200 answer, code invalid_event); a body too large is a 413 the client splits.
  const serverRefusals: Array<{ name: string; bad: (event: WardenEvent) => WardenEvent; status: number | undefined; reason: RegExp }> = [
    { name: "nested 40 levels deep", bad: (e) => ({ ...e, data: { toolName: "read_tree", output: nest(40) } }), status: undefined, reason: /nested deeper than 32 levels/ },
    { name: "an id over 256 characters", bad: (e) => ({ ...e, toolCallId: `tc_${"y".repeat(300)}` }), status: undefined, reason: /toolCallId/ },
    { name: "an output over 5 MB", bad: (e) => ({ ...e, data: { toolName: "export_all", output: HUGE } }), status: 413, reason: /413/ },
  ];

  for (const [t, { name, bad, status, reason }] of serverRefusals.entries()) {
    it(`through the server's refusal (a client that does not know the limits): ${name}`, async () => {
      const http = new RemoteHttp(url, agentKey, 30_000);
      let requests = 0;
      const dispatcher = new EventDispatcher({
        send: async (_batch, body) => {
          requests++;
          return IngestResponseSchema.parse((await http.request("POST", "/v1/events", { rawBody: body })).body);
        },
        flushInterval: 3_600_000,
        maxQueue: 10_000,
        maxBatch: 1000,
        maxBatchBytes: 64 * 1024 * 1024,
        spool: undefined,
        deadLetters: new DeadLetterFile(join(dir, "letters"), 64 * 1024 * 1024),
        check: () => undefined,
        onError: () => {},
      });
      const tag = `srv${t}_`;
      const events = Array.from({ length: 804 }, (_, n) => fake(n, tag));
      events[517] = bad(events[517]!);
      for (const event of events) dispatcher.enqueue(event);
      await dispatcher.flush();
      const counts = await serverCounts();
      const good = events.filter((_, n) => n !== 517);
      expect(good.filter((e) => counts.get(e.id) !== 1).map((e) => e.id)).toEqual([]);
      expect(counts.has(events[517]!.id)).toBe(false);
      const letters = new DeadLetterFile(join(dir, "letters"), 1).read();
      expect(letters).toHaveLength(1);
      expect(letters[0]).toMatchObject({ by: "server", event: { id: events[517]!.id } });
      // A control plane that refuses the whole request answers with a status (and the batch is split);
      // one that refuses events one by one names it in a 2xx answer's `refused`.
      expect([status, undefined]).toContain(letters[0]!.status);
      expect(letters[0]!.reason).toMatch(reason);
      // One refused event costs a split down to it: about two requests per halving.
      expect(requests).toBeLessThanOrEqual(2 * Math.ceil(Math.log2(804)) + 1);
      expect(dispatcher.stats).toMatchObject({ sent: 803, deadLettered: 1, dropped: 0 });
      await dispatcher.shutdown();
    });
  }
});

describe("dead letters", () => {
  const event = (n: number, extra: Partial<WardenEvent> = {}): WardenEvent => ({ id: `evt_dl${n}`, type: "tool.called" as WardenEvent["type"], ts: Date.now(), org: "acme", agentId: "bot", runId: "run_dl", stepId: null, toolCallId: `tc_dl${n}`, actor: null, data: { toolName: "t", n }, ...extra });

  /** A loopback server that takes every batch and answers with `answer(events)`. */
  const answering = async (answer: (events: WardenEvent[]) => unknown) => {
    const received: WardenEvent[] = [];
    const server = createServer((request, response) => {
      let text = "";
      request.on("data", (chunk) => (text += chunk));
      request.on("end", () => {
        const { events } = JSON.parse(text) as { events: WardenEvent[] };
        received.push(...events);
        response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(answer(events)));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return { received, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
  };

  const dispatcherTo = (url: string, spool?: Spool) => {
    const http = new RemoteHttp(url, "wdn_test", 5000);
    return new EventDispatcher({
      send: async (_batch, body) => IngestResponseSchema.parse((await http.request("POST", "/v1/events", { rawBody: body })).body),
      flushInterval: 3_600_000,
      maxQueue: 1000,
      maxBatch: 100,
      spool,
      deadLetters: new DeadLetterFile(join(dir, "letters"), 1024 * 1024),
      onError: () => {},
    });
  };

  it("an event a 2xx answer lists as rejected is set aside; an index that names another id is not trusted", async () => {
    const server = await answering((events) => ({
      accepted: events.length - 2,
      duplicates: 0,
      rejected: [
        { index: 3, id: events[3]!.id, code: "insufficient_scope", reason: "an agent key may not send approval.approved" },
        { index: 5, id: "evt_someone_else", code: "insufficient_scope", reason: "forged index" },
        { index: 7, id: "", code: "invalid_event", reason: "events.7.id: unreadable" },
      ],
    }));
    const dispatcher = dispatcherTo(server.url);
    const events = Array.from({ length: 10 }, (_, n) => event(n));
    for (const e of events) dispatcher.enqueue(e);
    await dispatcher.flush();
    expect(server.received.map((e) => e.id)).toEqual(events.map((e) => e.id));
    const letters = new DeadLetterFile(join(dir, "letters"), 1).read();
    expect(letters).toHaveLength(2);
    expect(letters[0]).toMatchObject({ by: "server", code: "insufficient_scope", reason: "an agent key may not send approval.approved", event: { id: events[3]!.id, data: { toolName: "t", n: 3 } } });
    expect(letters[1]).toMatchObject({ by: "server", code: "invalid_event", event: { id: events[7]!.id } });
    expect(dispatcher.stats).toMatchObject({ sent: 8, deadLettered: 2, dropped: 0 });
    await dispatcher.shutdown();
    await server.close();
  });

  it("the spool is read back with the wire's schema: a line that does not fit is set aside, a line cut short is skipped, the rest is delivered", async () => {
    const server = await answering((events) => ({ accepted: events.length, duplicates: 0 }));
    const spool = new Spool(join(dir, "spool"), 1024 * 1024);
    const good = [event(1), event(2), event(3)];
    const tooLong = event(4, { agentId: "a".repeat(MAX_ID_LENGTH + 1) });
    spool.append([good[0]!, tooLong, good[1]!]);
    const segment = readdirSync(join(dir, "spool")).find((name) => name.endsWith(".jsonl"))!;
    appendFileSync(join(dir, "spool", segment), `{"id":"evt_cut","type":"tool.ca\n${JSON.stringify({ ...good[2]!, extra: "not on the wire" })}\n`);
    const dispatcher = dispatcherTo(server.url, spool);
    await dispatcher.flush();
    expect(server.received.map((e) => e.id)).toEqual([good[0]!.id, good[1]!.id]);
    const letters = new DeadLetterFile(join(dir, "letters"), 1).read();
    expect(letters.map((l) => [l.event.id, l.by, l.code])).toEqual([
      [tooLong.id, "client", "invalid_event"],
      [good[2]!.id, "client", "invalid_event"],
    ]);
    expect(letters[0]!.reason).toMatch(/agentId/);
    expect(spool.hasData).toBe(false);
    await dispatcher.shutdown();
    await server.close();
  });

  it("the dead-letter file is bounded, keeps the newest, and leaves large data to the ledger", () => {
    const file = new DeadLetterFile(join(dir, "bounded"), 64 * 1024);
    for (let n = 0; n < 2000; n++) file.record([{ event: event(n), refusal: { by: "client", code: "invalid_event", reason: `reason ${n}` } }]);
    file.record([{ event: event(9999, { data: { output: "z".repeat(100 * 1024) } }), refusal: { by: "client", code: "event_too_large", reason: "too large" } }]);
    const bytes = readdirSync(join(dir, "bounded")).reduce((sum, name) => sum + statSync(join(dir, "bounded", name)).size, 0);
    expect(bytes).toBeLessThanOrEqual(64 * 1024 + 1024);
    const letters = new DeadLetterFile(join(dir, "bounded"), 64 * 1024).read();
    expect(letters.length).toBeGreaterThan(50);
    expect(letters.at(-2)!.event.id).toBe("evt_dl1999");
    expect(letters.at(-1)!.event).toMatchObject({ id: "evt_dl9999", dataBytes: expect.any(Number) });
    expect(letters.at(-1)!.event.data).toBeUndefined();
  });
});
