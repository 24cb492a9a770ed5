import { describe, expect, it } from "vitest";
import { HaltedError, ToolBlockedError, Warden } from "agent-warden";

// `run.tool` admits a call with nothing to wait for, and takes a tool's answer, without extra promise
// turns. These are the cases that path must still get right: what it records, halts, signals, refusals.

const policies = {
  version: 1,
  default: "allow",
  policies: [
    { id: "flag-writes", when: { tool: "write_*" }, action: "warn" },
    { id: "no-deletes", when: { tool: "delete_*" }, action: "block" },
  ],
} as const;

const fresh = () => new Warden({ agentId: "agent", store: ":memory:", policies: policies as never, onError: () => {} });

describe("run.tool without waiting", () => {
  it("a synchronous tool's output, and a warned call's, are returned and recorded as completed", async () => {
    const warden = fresh();
    try {
      let runId = "";
      const outputs = await warden.run({ task: "t" }, async (run) => {
        runId = run.runId;
        return [await run.tool("read_order", { id: 1 }, () => ({ order: 1 })), await run.tool("write_note", { text: "x" }, async () => "written")];
      });
      expect(outputs).toEqual([{ order: 1 }, "written"]);
      const record = await warden.getRun(runId);
      expect(record.toolCalls.map((call) => [call.toolName, call.status, call.output, call.decision?.action])).toEqual([
        ["read_order", "completed", { order: 1 }, "allow"],
        ["write_note", "completed", "written", "warn"],
      ]);
    } finally {
      warden.close();
    }
  });

  it("a tool that halts its own agent while it runs is recorded as failed with the halt, and the call throws it", async () => {
    const warden = fresh();
    try {
      let runId = "";
      const outcome = await warden
        .run({ task: "t" }, async (run) => {
          runId = run.runId;
          await run.tool("shutdown", {}, () => {
            warden.halt({ reason: "stop now", agentId: "agent" });
            return "done";
          });
        })
        .catch((error: unknown) => error);
      expect(outcome).toBeInstanceOf(HaltedError);
      const [call] = (await warden.getRun(runId)).toolCalls;
      expect(call?.status).toBe("failed");
      expect(JSON.stringify(call?.error)).toMatch(/stop now/);
    } finally {
      warden.close();
    }
  });

  it("a tool whose promise settles after a halt does not count as a success", async () => {
    const warden = fresh();
    try {
      let runId = "";
      const outcome = await warden
        .run({ task: "t" }, async (run) => {
          runId = run.runId;
          const pending = run.tool("slow", {}, () => new Promise<string>((resolve) => setTimeout(() => resolve("late"), 30)));
          warden.halt({ reason: "mid-call", agentId: "agent" });
          return pending;
        })
        .catch((error: unknown) => error);
      expect(outcome).toBeInstanceOf(HaltedError);
      const [call] = (await warden.getRun(runId)).toolCalls;
      expect(call?.status).toBe("failed");
      expect(call?.output).toBeUndefined();
    } finally {
      warden.close();
    }
  });

  it("a call whose framework signal has already aborted never runs its tool", async () => {
    const warden = fresh();
    try {
      const controller = new AbortController();
      controller.abort(new Error("caller gave up"));
      let ran = false;
      const handle = warden.beginToolCall({ tool: "read_order", args: {}, signal: controller.signal });
      await expect(handle.run(() => (ran = true))).rejects.toThrow("caller gave up");
      expect(ran).toBe(false);
    } finally {
      warden.close();
    }
  });

  it("a blocked call still throws its refusal and never runs", async () => {
    const warden = fresh();
    try {
      let ran = false;
      await expect(warden.run({ task: "t" }, (run) => run.tool("delete_all", {}, () => (ran = true)))).rejects.toBeInstanceOf(ToolBlockedError);
      expect(ran).toBe(false);
    } finally {
      warden.close();
    }
  });
});
