// Telemetry lost on the way to the control plane leaves a signed gap record in the local ledger: the
// missing range is named (how many, which, why) under a checkpoint, not silent.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { expandLedgerEntry, openLedger, Warden, type TelemetryGap } from "agent-warden";
import { createWardenServer } from "agent-warden/server";
import { tempDir } from "./fixtures/proc.js";

const temp = tempDir("warden-gaps-");
afterAll(() => temp.cleanup());

describe("telemetry gaps", () => {
  it("events dropped while the control plane is away (no spool, a small queue) are recorded and signed as gaps", async () => {
    // A port that refuses connections: the control plane is down for the whole test.
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const port = (blocker.address() as AddressInfo).port;
    await new Promise<void>((resolve) => blocker.close(() => resolve()));
    const file = join(temp.dir, "dropped", "warden.db");
    const warden = new Warden({
      agentId: "billing-agent",
      store: file,
      url: `http://127.0.0.1:${port}`,
      apiKey: `wdn_${"a".repeat(43)}`,
      policies: { version: 1, default: "allow", policies: [] },
      remote: { spool: false, maxQueue: 5, flushInterval: "1h", stream: false },
      // The control plane never answers: enforcement must not wait on it for this test.
      halt: { whenUnknown: "allow" },
      onError: () => {},
    });
    for (let i = 0; i < 10; i++) await warden.run({ task: `refund ${i}` }, (run) => run.tool("read_order", { i }, () => ({ i })));
    const recorded = warden.ledger.entries().flatMap(expandLedgerEntry).filter((e) => e.type !== "telemetry.gap" && e.type !== "policy.set").length;
    await new Promise((resolve) => setTimeout(resolve, 20));
    warden.close();
    const { ledger, close } = openLedger(file);
    try {
      const gaps = ledger.entries().filter((e) => e.type === "telemetry.gap");
      expect(gaps.length).toBeGreaterThan(0);
      const data = gaps.map((g) => g.data as TelemetryGap);
      for (const gap of data) expect(gap).toMatchObject({ kind: "dropped", reason: expect.stringMatching(/queue is full|closed/), count: expect.any(Number), first: { id: expect.any(String) } });
      // Every event recorded was either still queued at close (dropped then) or dropped before: all named.
      expect(data.reduce((n, g) => n + g.count, 0)).toBe(recorded);
      const named = new Set(data.flatMap((g) => g.eventIds));
      for (const event of ledger.entries().flatMap(expandLedgerEntry).filter((e) => e.type !== "telemetry.gap" && e.type !== "policy.set")) expect(named.has(event.id)).toBe(true);
      // Signed: the ledger verifies with nothing uncovered after the last gap record.
      const result = ledger.verify({ checkpointEvery: 1 });
      expect(result).toMatchObject({ ok: true });
      if (result.ok) expect(result.coverage.coveredTo).toBeGreaterThanOrEqual(gaps.at(-1)!.seq);
    } finally {
      close();
    }
  });

  it("an event the control plane refuses is recorded as a refused gap, signed", async () => {
    const server = createWardenServer({ db: ":memory:", console: false, heartbeatInterval: 60_000, onError: () => {} });
    const agentKey = (await server.store.createKey({ org: "acme", role: "agent" })).key;
    const { url } = await server.listen(0);
    try {
      const file = join(temp.dir, "refused", "warden.db");
      const warden = new Warden({ agentId: "bot", url, apiKey: agentKey, store: file, remote: { flushInterval: "1h", stream: false }, onError: () => {} });
      expect(await warden.ready()).toBe(true);
      const runId = await warden.startRun(`run_${"x".repeat(300)}`);
      await warden.completeRun(runId, { ok: true });
      await warden.flush();
      await new Promise((resolve) => setTimeout(resolve, 20));
      const gaps = warden.ledger.entries().filter((e) => e.type === "telemetry.gap").map((e) => e.data as TelemetryGap);
      expect(gaps).toEqual([expect.objectContaining({ kind: "refused", count: warden.remote!.status.deadLettered })]);
      expect(gaps[0]!.eventIds.length).toBeGreaterThan(0);
      expect(warden.ledger.verify({ checkpointEvery: 1 })).toMatchObject({ ok: true });
      await warden.shutdown();
    } finally {
      await server.close();
    }
  });
});
