import { spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, describe, expect, it } from "vitest";
import { openLedger, Warden } from "agent-warden";
import { decodeBatch, encodeBatch } from "../src/store/commit-link.js";
import type { LedgerDraft, QueuedWrite } from "../src/store/sqlite-store.js";
import { childEnv, REPO, tempDir, TS_NODE } from "./fixtures/proc.js";

// The hand-over from the agent's thread to the store's writer: writes and ledger drafts cross as one text
// of their text values and two arrays of numbers (what reads them back, and the numbers).

const temp = tempDir("warden-handover-");
afterAll(() => temp.cleanup());

/** Values that look like the text's own markers, need escaping in JSON, or are not plain one-byte text. */
const AWKWARD = ["", "n", "d1;", "s3:abc", "w0,1;e", ':;,"\\\n\t', "naïve — 日本語", "emoji 🦀 pair", "lone \ud800 surrogate", "x".repeat(70_000)];

const draft = (i: number, dataJson: string, agentId: string | null): LedgerDraft => ({ id: `evt_${i}`, ts: 1_700_000_000_000 + i, type: "tool.called", org: "o:1;", agentId, runId: i % 2 === 0 ? null : "run_1", stepId: null, toolCallId: `tc_${i}`, actor: i === 0 ? "s5:actor" : null, dataJson });

describe("the batch parts", () => {
  it("gives back every write and draft as it was, whatever the text holds", () => {
    const writes: QueuedWrite[] = [
      { sql: "a", params: [...AWKWARD, null, 0, -0.5, 1e21, -1234567890123, Number.MAX_SAFE_INTEGER, 5e-324] },
      { sql: "b", params: [] },
      { sql: "a", params: ["tail"] },
    ];
    const drafts = AWKWARD.map((text, i) => draft(i, JSON.stringify({ text }), i === 3 ? null : text));
    const parts = encodeBatch([0, 1, 0], writes, drafts);
    expect(typeof parts?.text).toBe("string");
    // As the message port delivers it: a copy.
    const [decodedWrites, decodedDrafts] = decodeBatch(structuredClone(parts!));
    expect(decodedWrites).toEqual([
      [0, writes[0]!.params],
      [1, []],
      [0, ["tail"]],
    ]);
    expect(decodedDrafts.map((d) => ({ ...d }))).toEqual(drafts);
    // -0 crosses as 0, as JSON carried it before.
    expect(Object.is(decodeBatch(encodeBatch([0], [{ sql: "a", params: [-0] }], [])!)[0][0]![1][0], 0)).toBe(true);
  });

  it("declines what only the structured clone carries: bytes, big integers, NaN and infinities", () => {
    for (const value of [new Uint8Array([1, 2]), 12n, NaN, Infinity]) {
      expect(encodeBatch([0], [{ sql: "a", params: [value as never] }], [])).toBeUndefined();
    }
    expect(encodeBatch([], [], [{ ...draft(1, "{}", null), ts: NaN }])).toBeUndefined();
  });

  it("refuses parts it did not write with a StoreError", () => {
    // The layout's codes: a text's length, -1 null, -2 a number, -3 a write (statement, count), -4 a ledger draft.
    const broken: Array<[string, number[], number[]]> = [
      ["x", [], []], // a character left over
      ["", [-1], []], // a value outside any write or draft
      ["", [-3, 0, 1], []], // a write short of its parameter
      ["ab", [-3, 0, 1, 9], []], // a text longer than what is left
      ["", [-3, 0, 1, -2], []], // a number that is not there
      ["", [-3, 0, 1, -2], [NaN]],
      ["", [-3, 0, 1, -1], [1]], // a number left over
      ["", [-3, -1, 1, -1], []], // a negative statement
      ["", [-3, 0, -1], []], // a negative count
      ["", [-3, 0, 1, -7], []], // an unknown code
      ["a", [-3, 0, 1, 0.5], []], // not an integer
      ["", [-4], []], // a draft without its fields
      ["", [-4, -1, -2, -1, -1, -1, -1, -1, -1, -1, -1], [1]], // a draft whose id is null
    ];
    for (const [text, layout, numbers] of broken) {
      expect(() => decodeBatch({ text, layout, numbers }), JSON.stringify(layout)).toThrow(expect.objectContaining({ code: "store_error" }) as Error);
    }
    expect(() => decodeBatch({ text: 1 } as never)).toThrow(expect.objectContaining({ code: "store_error" }) as Error);
  });
});

describe("the hand-over to the writer thread", () => {
  it("what flush() returned for survives a kill, awkward text included, and the ledger verifies", async () => {
    const file = join(temp.dir, "killed", "warden.db");
    const script = `
      import { Warden } from ${JSON.stringify(join(REPO, "src/index.ts"))};
      const awkward = ${JSON.stringify(AWKWARD.slice(0, -1))};
      const warden = new Warden({ agentId: "agent:s3;n", store: ${JSON.stringify(file)} });
      const runId = await warden.run({ note: "s4:run;" }, async (run) => {
        for (let i = 0; i < 300; i++) await run.tool(\`tool;\${i % 3}:s1\`, { i, text: awkward[i % awkward.length], big: i === 7 ? "x".repeat(40000) : undefined }, () => ({ echo: awkward[i % awkward.length], n: -(i + 1) / 7 }));
        return run.runId;
      });
      warden.flush();
      process.stdout.write(JSON.stringify({ flushed: runId }) + "\\n");
      setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, [...TS_NODE, "--input-type=module", "-e", script], { cwd: REPO, env: childEnv(), stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const runId = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the child did not flush in time: ${stderr}`)), 60_000);
      createInterface({ input: child.stdout }).on("line", (line) => {
        clearTimeout(timer);
        resolve((JSON.parse(line) as { flushed: string }).flushed);
      });
      child.on("exit", (code) => reject(new Error(`the child exited (${code}) before flushing: ${stderr}`)));
    });
    child.kill("SIGKILL");
    await new Promise((resolve) => child.once("exit", resolve));

    const warden = new Warden({ agentId: "reader", store: file });
    try {
      const run = await warden.getRun(runId);
      expect(run.toolCalls).toHaveLength(300);
      for (const [i, call] of run.toolCalls.entries()) {
        const text = AWKWARD[i % (AWKWARD.length - 1)];
        expect(call.toolName).toBe(`tool;${i % 3}:s1`);
        expect(call.status).toBe("completed");
        expect(call.input).toEqual(i === 7 ? { i, text, big: "x".repeat(40_000) } : { i, text });
        expect(call.output).toEqual({ echo: text, n: -(i + 1) / 7 });
      }
    } finally {
      warden.close();
    }
    const { ledger, close } = openLedger(file);
    try {
      expect(ledger.verify({ full: true })).toMatchObject({ ok: true });
    } finally {
      close();
    }
  });
});
