// handle.settle: how adapters record a tool's end without ever throwing into the agent, and learn a halt from the outcome.
import { afterEach, describe, expect, it } from "vitest";
import { Warden, type WardenOptions } from "agent-warden";

const clients: Warden[] = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
});

function open(options: Partial<WardenOptions> = {}): Warden {
  const client = new Warden({ agentId: "agent", store: ":memory:", policies: { policies: [] }, ...options });
  clients.push(client);
  return client;
}

describe("handle.settle", () => {
  it("records the output or the failure, like complete and fail", async () => {
    const warden = open({ onError: () => {} });
    const { runId } = warden.beginRun();
    const ok = warden.beginToolCall({ tool: "read", args: { id: 1 }, runId });
    const bad = warden.beginToolCall({ tool: "write", args: { id: 2 }, runId });
    expect((await ok.admit()).ok).toBe(true);
    expect((await bad.admit()).ok).toBe(true);
    ok.settle({ output: { rows: 3 } });
    bad.settle({ error: new Error("disk full") });
    const calls = warden.runRecord(runId).toolCalls;
    expect(calls.find((c) => c.toolName === "read")).toMatchObject({ status: "completed", output: { rows: 3 } });
    expect(calls.find((c) => c.toolName === "write")).toMatchObject({ status: "failed", error: expect.objectContaining({ message: "disk full" }) });
  });

  it("does not throw when a halt landed while the tool ran: the call is recorded failed and the outcome says halted", async () => {
    const reported: unknown[] = [];
    const warden = open({ onError: (error) => reported.push(error) });
    const { runId } = warden.beginRun();
    const handle = warden.beginToolCall({ tool: "read", runId });
    expect((await handle.admit()).ok).toBe(true);
    warden.halt({ reason: "incident" });
    expect(() => handle.settle({ output: "late" })).not.toThrow();
    expect(handle.outcome).toMatchObject({ outcome: "halted", cause: "halt", error: expect.objectContaining({ code: "halted" }) });
    expect(warden.runRecord(runId).toolCalls[0]!.status).toBe("failed");
    // Settling again (a framework's second hook) is no news either.
    expect(() => handle.settle({ error: new Error("again") })).not.toThrow();
    expect(reported).toEqual([]);
  });
});
