// Remote mode in one process: the dispatcher's retry rules against a scripted loopback server,
// the spool, the policy cache, fail-closed halt state, stream resumption, and a process that
// exits by itself.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ConfigError, RemoteError, Warden, type WardenEvent } from "agent-warden";
import { createWardenServer, type WardenServer } from "agent-warden/server";
import { EventDispatcher } from "../src/remote/dispatcher.js";
import { parseRetryAfter } from "../src/remote/http.js";
import { Spool } from "../src/remote/spool.js";
import { EventStreamParser, type StreamEvent } from "../src/remote/sse.js";
import { childEnv, REPO } from "./fixtures/proc.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "warden-remote-unit-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await sleep(5);
  }
}

let seq = 0;
const fakeEvent = (): WardenEvent => ({ id: `evt_${++seq}`, type: "tool.called", ts: Date.now(), org: "default", agentId: "a", runId: "run_1", stepId: null, toolCallId: `tc_${seq}`, actor: null, data: { toolName: "t" } });

/** A loopback server answering POST /v1/events with scripted statuses, recording what it received. */
async function scriptedServer(script: Array<{ status: number; headers?: Record<string, string> }>): Promise<{ server: Server; url: string; received: WardenEvent[][]; times: number[] }> {
  const received: WardenEvent[][] = [];
  const times: number[] = [];
  const server = createServer((request, response) => {
    let text = "";
    request.on("data", (chunk) => (text += chunk));
    request.on("end", () => {
      times.push(Date.now());
      const step = script.shift() ?? { status: 200 };
      const body = JSON.parse(text) as { events: WardenEvent[] };
      if (step.status === 413 && body.events.length > 1) {
        response.writeHead(413).end();
        return;
      }
      if (step.status === 200 || step.status === 413) received.push(body.events);
      response.writeHead(step.status === 413 ? 200 : step.status, { "content-type": "application/json", ...step.headers });
      response.end(JSON.stringify({ accepted: body.events.length, duplicates: 0 }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received, times };
}

function dispatcherFor(url: string, options: { spool?: boolean; maxQueue?: number; maxBatch?: number; errors?: unknown[] } = {}) {
  const errors = options.errors ?? [];
  return new EventDispatcher({
    send: async (batch) => {
      let response: Response;
      try {
        response = await fetch(`${url}/v1/events`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ events: batch }) });
      } catch (cause) {
        throw new RemoteError("unreachable", { retryable: true, cause });
      }
      await response.text();
      if (response.ok) return { accepted: batch.length };
      throw new RemoteError(`status ${response.status}`, { status: response.status, retryable: [429, 502, 503, 504].includes(response.status), retryAfterMs: parseRetryAfter(response.headers.get("retry-after")) });
    },
    flushInterval: 20,
    maxQueue: options.maxQueue ?? 1000,
    maxBatch: options.maxBatch ?? 100,
    spool: options.spool === false ? undefined : new Spool(join(dir, "spool"), 64 * 1024 * 1024),
    deadLetters: undefined,
    onError: (error) => errors.push(error),
  });
}

describe("event dispatcher", () => {
  it("429 waits for Retry-After, then delivers every event once", async () => {
    const { server, url, received, times } = await scriptedServer([{ status: 429, headers: { "retry-after": "1" } }]);
    const dispatcher = dispatcherFor(url);
    const events = Array.from({ length: 5 }, fakeEvent);
    for (const event of events) dispatcher.enqueue(event);
    await waitFor(() => received.length === 1, 5000);
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(950);
    expect(received.flat().map((e) => e.id)).toEqual(events.map((e) => e.id));
    await dispatcher.shutdown();
    server.close();
  });

  it("503 without Retry-After backs off and retries; 500 and 400 are not retried (the event is set aside)", async () => {
    const errors: unknown[] = [];
    const { server, url, received, times } = await scriptedServer([{ status: 503 }, { status: 503 }, { status: 200 }, { status: 500 }, { status: 200 }]);
    const dispatcher = dispatcherFor(url, { errors });
    dispatcher.enqueue(fakeEvent());
    await waitFor(() => received.length === 1);
    expect(times.length).toBe(3);
    const lost = fakeEvent();
    dispatcher.enqueue(lost);
    await waitFor(() => times.length === 4);
    const after = fakeEvent();
    dispatcher.enqueue(after);
    await waitFor(() => received.length === 2);
    expect(received[1]!.map((e) => e.id)).toEqual([after.id]);
    expect(dispatcher.stats.deadLettered).toBe(1);
    expect(dispatcher.stats.dropped).toBe(0);
    expect(errors.some((e) => e instanceof RemoteError && e.status === 500)).toBe(true);
    await dispatcher.shutdown();
    server.close();
  });

  it("413 splits the batch", async () => {
    const { server, url, received } = await scriptedServer([{ status: 413 }, { status: 413 }, { status: 413 }]);
    const dispatcher = dispatcherFor(url);
    const events = Array.from({ length: 8 }, fakeEvent);
    for (const event of events) dispatcher.enqueue(event);
    await dispatcher.flush();
    expect(received.flat().map((e) => e.id)).toEqual(events.map((e) => e.id));
    expect(dispatcher.stats.deadLettered).toBe(0);
    await dispatcher.shutdown();
    server.close();
  });

  it("spools while the server is unreachable and replays, oldest first, when it returns", async () => {
    const { server, url, received } = await scriptedServer([]);
    const port = Number(new URL(url).port);
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const errors: unknown[] = [];
    const dispatcher = dispatcherFor(url, { errors, maxBatch: 50 });
    const events = Array.from({ length: 300 }, fakeEvent);
    for (const event of events) dispatcher.enqueue(event);
    await waitFor(() => dispatcher.stats.offline && dispatcher.stats.queued === 0);
    expect(dispatcher.stats.spooledBytes).toBeGreaterThan(0);
    expect(readdirSync(join(dir, "spool")).length).toBeGreaterThan(0);
    expect(errors.length).toBe(1);
    await dispatcher.flush();
    server.listen(port, "127.0.0.1");
    await waitFor(() => received.flat().length === 300, 10_000);
    expect(received.flat().map((e) => e.id)).toEqual(events.map((e) => e.id));
    await waitFor(() => dispatcher.stats.spooledBytes === 0);
    expect(readdirSync(join(dir, "spool"))).toEqual([]);
    await dispatcher.shutdown();
    await dispatcher.shutdown();
    server.close();
  });

  it("without a spool the queue is bounded: overflow is dropped with one warning", async () => {
    const errors: unknown[] = [];
    const dispatcher = dispatcherFor("http://127.0.0.1:9", { spool: false, maxQueue: 100, errors });
    for (let i = 0; i < 1000; i++) dispatcher.enqueue(fakeEvent());
    expect(dispatcher.stats.queued).toBe(100);
    expect(dispatcher.stats.dropped).toBe(900);
    expect(errors.filter((e) => String((e as Error).message).includes("dropped")).length).toBe(1);
    dispatcher.close();
    dispatcher.close();
  });

  it("a spool left by a dead process is adopted and replayed by the next one", async () => {
    const spoolDir = join(dir, "spool");
    const orphan = new Spool(spoolDir, 1024 * 1024);
    orphan.append([fakeEvent(), fakeEvent()]);
    // Pretend its writer died: rename it to a pid that cannot be alive.
    const [file] = readdirSync(spoolDir);
    const dead = file!.replace(/^spool-\d+-/, "spool-999999999-");
    writeFileSync(join(spoolDir, dead), "");
    rmSync(join(spoolDir, dead));
    const { renameSync } = await import("node:fs");
    renameSync(join(spoolDir, file!), join(spoolDir, dead));
    const adopted = new Spool(spoolDir, 1024 * 1024);
    expect(adopted.hasData).toBe(true);
    expect(adopted.peek(10)).toHaveLength(2);
    adopted.ack(2);
    expect(adopted.hasData).toBe(false);
    expect(readdirSync(spoolDir)).toEqual([]);
  });
});

describe("server-sent events parser", () => {
  it("handles ids, multi-line data, comments, CRLF and chunks split anywhere", () => {
    const text = "retry: 1000\r\n\r\n: heartbeat\n\nid: 7\nevent: halt.created\ndata: {\"a\":\ndata: 1}\n\nid: 8\rdata: plain\r\r";
    for (let cut = 0; cut < text.length; cut++) {
      const events: StreamEvent[] = [];
      const parser = new EventStreamParser((e) => events.push(e));
      parser.push(text.slice(0, cut));
      parser.push(text.slice(cut));
      expect(events, `cut at ${cut}`).toEqual([
        { id: "7", event: "halt.created", data: '{"a":\n1}' },
        { id: "8", event: "message", data: "plain" },
      ]);
    }
  });
});

describe("remote mode with a real control plane", () => {
  let server: WardenServer;
  let url: string;
  let admin: string;
  let agentKey: string;

  const api = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(url + path, { method, headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" }, ...(body !== undefined && { body: JSON.stringify(body) }) });
    return response.json() as Promise<any>;
  };

  const start = async (port = 0) => {
    server = createWardenServer({ db: join(dir, "server.db"), console: false, heartbeatInterval: 100, onError: () => {} });
    if (admin === undefined) {
      admin = (await server.store.createKey({ org: "acme", role: "admin" })).key;
      agentKey = (await server.store.createKey({ org: "acme", role: "agent" })).key;
    }
    url = (await server.listen(port)).url;
  };

  beforeEach(async () => {
    admin = undefined as unknown as string;
    await start();
  });
  afterEach(async () => {
    await server.close();
  });

  const client = (extra: Record<string, unknown> = {}) =>
    new Warden({ agentId: "bot", url, apiKey: agentKey, store: ":memory:", remote: { cacheDir: join(dir, "cache"), pollInterval: 50, flushInterval: 20 }, onError: () => {}, ...extra });

  it("a restart without the server still enforces the last policies it synced", async () => {
    await api("PUT", "/v1/policies", { policies: { policies: [{ id: "no-deploy", when: { tool: "deploy" }, action: "block" }] } });
    const first = client();
    expect(await first.ready()).toBe(true);
    expect(first.check({ tool: "deploy" }).action).toBe("block");
    await first.shutdown();
    await server.close();

    // Fail closed by default: the halt state cannot be known.
    const offline = client({ halt: { staleAfter: 200 } });
    expect(await offline.ready()).toBe(false);
    expect(offline.check({ tool: "read" })).toMatchObject({ action: "block", halted: true, complete: false });
    await expect(offline.run({}, () => "x")).rejects.toMatchObject({ code: "halted" });
    offline.close();

    // With halt.whenUnknown: allow, the cached policies decide.
    const lenient = client({ halt: { staleAfter: 200, whenUnknown: "allow" } });
    expect(await lenient.ready()).toBe(false);
    expect(lenient.check({ tool: "deploy" })).toMatchObject({ action: "block", policyId: "no-deploy" });
    expect(lenient.check({ tool: "read" }).action).toBe("allow");
    expect(await lenient.run({}, (run) => run.tool("read", {}, () => "works offline"))).toBe("works offline");
    lenient.close();
    await start();
  });

  it("with neither cached nor local policies, every call is blocked until the first sync", async () => {
    const lonely = new Warden({ agentId: "bot", url: "http://127.0.0.1:9", apiKey: agentKey, store: ":memory:", remote: { cacheDir: join(dir, "empty") }, halt: { whenUnknown: "allow" }, onError: () => {} });
    expect(await lonely.ready()).toBe(false);
    expect(lonely.check({ tool: "anything" })).toMatchObject({ action: "block", policyId: "warden-unsynced" });
    lonely.close();
  });

  it("halt state goes unknown (and blocks) when the server is silent beyond the staleness bound, and recovers", async () => {
    const warden = client({ halt: { staleAfter: 400 } });
    expect(await warden.ready()).toBe(true);
    expect(warden.check({ tool: "read" }).action).toBe("allow");
    const port = Number(new URL(url).port);
    await server.close();
    await waitFor(() => warden.check({ tool: "read" }).action === "block", 3000);
    expect(warden.check({ tool: "read" })).toMatchObject({ halted: true, complete: false });
    await start(port);
    await waitFor(() => warden.check({ tool: "read" }).action === "allow", 5000);
    await warden.shutdown();
  });

  it("a halt made while the client's stream was down is applied when it reconnects (nothing missed)", async () => {
    const warden = client({ remote: { cacheDir: join(dir, "cache"), stream: true, pollInterval: 60_000, flushInterval: 20 }, halt: { staleAfter: 60_000 } });
    expect(await warden.ready()).toBe(true);
    await waitFor(() => warden.remote!.status.streamConnected);
    const port = Number(new URL(url).port);
    await server.close();
    await start(port);
    await api("POST", "/v1/halts", { agentId: "bot", reason: "while you were away" });
    await api("PUT", "/v1/policies", { policies: { policies: [{ id: "later", when: { tool: "deploy" }, action: "block" }] } });
    await waitFor(() => warden.check({ tool: "read" }).action === "block", 8000);
    expect(warden.check({ tool: "read" }).reason).toContain("while you were away");
    await waitFor(() => warden.policies.policies.some((p) => p.id === "later"), 8000);
    await warden.shutdown();
  });

  it("Last-Event-ID replays exactly what was missed; an id older than what is kept gets reset", async () => {
    const read = async (headers: Record<string, string>, ms = 300) => {
      const controller = new AbortController();
      const response = await fetch(`${url}/v1/stream`, { headers: { authorization: `Bearer ${admin}`, ...headers }, signal: controller.signal });
      const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      const timer = setTimeout(() => controller.abort(), ms);
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          text += value;
        }
      } catch {
        // Aborted.
      }
      clearTimeout(timer);
      const events: Array<{ id: string | undefined; event: string }> = [];
      const parser = new EventStreamParser((e) => events.push({ id: e.id, event: e.event }));
      parser.push(text);
      return events;
    };
    const hello = await read({});
    expect(hello).toEqual([{ id: "0", event: "hello" }]);
    await api("POST", "/v1/halts", { agentId: "x", reason: "one" });
    await api("POST", "/v1/halts/resume", { agentId: "x" });
    await api("PUT", "/v1/policies", { policies: { policies: [] } });
    expect(await read({ "last-event-id": "0" })).toEqual([
      { id: "1", event: "halt.created" },
      { id: "2", event: "halt.lifted" },
      { id: "3", event: "policy.updated" },
    ]);
    expect(await read({ "last-event-id": "2" })).toEqual([{ id: "3", event: "policy.updated" }]);
    expect(await read({ "last-event-id": "99" })).toEqual([{ id: "3", event: "reset" }]);
  });

  it("events recorded by the client reach the server's runs; flush and shutdown are safe twice", async () => {
    const warden = client();
    expect(await warden.ready()).toBe(true);
    await warden.run({ task: "t" }, async (run) => {
      await run.step("work", () => run.tool("read_order", { id: 1 }, () => ({ total: 5 })));
    });
    await warden.remote!.flush();
    await warden.remote!.flush();
    const runs = await api("GET", "/v1/runs?agentId=bot");
    expect(runs.total).toBe(1);
    const tree = await api("GET", `/v1/runs/${runs.items[0].runId}`);
    expect(tree.status).toBe("completed");
    expect(tree.steps).toHaveLength(1);
    expect(tree.toolCalls[0]).toMatchObject({ toolName: "read_order", status: "completed", output: { total: 5 } });
    await warden.shutdown();
    await warden.shutdown();
    warden.close();
  });

  it("telemetry never throws into the agent and never blocks a tool call, even with a server that never answers", async () => {
    // A server that accepts requests and never answers: if a tool call waited on telemetry, it would never finish.
    const broken = createServer(() => {});
    await new Promise<void>((resolve) => broken.listen(0, "127.0.0.1", resolve));
    const brokenUrl = `http://127.0.0.1:${(broken.address() as AddressInfo).port}`;
    const errors: unknown[] = [];
    const warden = new Warden({ agentId: "bot", url: brokenUrl, apiKey: agentKey, store: ":memory:", policies: { policies: [] }, remote: { cacheDir: join(dir, "broken") }, halt: { whenUnknown: "allow" }, onError: (e) => errors.push(e) });
    let done = 0;
    for (let i = 0; i < 200; i++) done += (await warden.run({}, (run) => run.tool("read", {}, () => 1)));
    expect(done).toBe(200);
    await warden.shutdown();
    broken.closeAllConnections();
    broken.close();
  });

  it("reads WARDEN_URL and WARDEN_API_KEY; a url without a key is a ConfigError", async () => {
    const warden = Warden.fromEnv({ store: ":memory:", remote: { cacheDir: join(dir, "env") }, onError: () => {} }, { WARDEN_AGENT_ID: "bot", WARDEN_URL: url, WARDEN_API_KEY: agentKey });
    expect(await warden.ready()).toBe(true);
    expect(warden.remote).toBeDefined();
    await warden.shutdown();
    expect(() => new Warden({ agentId: "bot", url, store: ":memory:" })).toThrow(ConfigError);
    expect(() => new Warden({ agentId: "bot", url: "ftp://x", apiKey: "k", store: ":memory:" })).toThrow(ConfigError);
    expect(new Warden({ agentId: "bot", store: ":memory:" }).remote).toBeUndefined();
  });

  it("an agent process in remote mode exits by itself: nothing it holds keeps the event loop alive", async () => {
    const script = join(dir, "exit.mts");
    writeFileSync(
      script,
      `import { Warden } from "agent-warden";
const warden = new Warden({ agentId: "bot", url: ${JSON.stringify(url)}, apiKey: ${JSON.stringify(agentKey)}, store: ":memory:", remote: { cacheDir: ${JSON.stringify(join(dir, "exit"))} }, onError: () => {} });
await warden.ready();
await warden.run({}, (run) => run.tool("read", {}, () => 1));
await new Promise((resolve) => setTimeout(resolve, 300));
console.log("done");
`,
    );
    const child = spawn(process.execPath, ["--import", "tsx", script], { cwd: REPO, env: childEnv(), stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (chunk) => (out += chunk));
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        resolve(-1);
      }, 15_000);
      child.on("close", (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    expect(code).toBe(0);
    expect(out).toContain("done");
    expect(existsSync(join(dir, "exit"))).toBe(true);
  });
});
