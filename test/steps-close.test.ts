// Closing a step: checked in memory when this client opened it (no store read on the agent's path), against
// the store when another client did; a step closed twice or named under another run is refused either way.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { InvalidStateError, NotFoundError, Warden } from "agent-warden";

const cleanup: Array<() => void> = [];
afterEach(() => {
  while (cleanup.length > 0) cleanup.pop()!();
});

function storeFile(): string {
  const dir = mkdtempSync(join(tmpdir(), "warden-steps-"));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, "warden.db");
}

function client(store: string): Warden {
  const warden = new Warden({ agentId: "steps-agent", store });
  cleanup.unshift(() => warden.close());
  return warden;
}

describe("closing steps", () => {
  it("refuses a step of another run, and a step closed already, and records one completion", async () => {
    const warden = client(storeFile());
    const runId = await warden.startRun();
    const other = await warden.startRun();
    const stepId = await warden.startStep(runId, "plan");
    await expect(warden.completeStep(other, stepId)).rejects.toBeInstanceOf(NotFoundError);
    await warden.completeStep(runId, stepId);
    await expect(warden.completeStep(runId, stepId)).rejects.toBeInstanceOf(InvalidStateError);
    await expect(warden.completeStep(runId, "step_unknown")).rejects.toBeInstanceOf(NotFoundError);
    await warden.completeRun(runId);
    const run = await warden.getRun(runId);
    expect(run.steps.map((s) => [s.name, s.status])).toEqual([["plan", "completed"]]);
    expect(run.events.filter((e) => e.type === "step.completed")).toHaveLength(1);
  });

  it("closes a step another client opened on the same store, checked against the store", async () => {
    const store = storeFile();
    const first = client(store);
    const runId = await first.startRun();
    const stepId = await first.startStep(runId, "fetch");
    await first.flush();
    const second = client(store);
    await expect(second.completeStep("run_other", stepId)).rejects.toBeInstanceOf(NotFoundError);
    await second.completeStep(runId, stepId);
    await second.flush();
    await expect(second.completeStep(runId, stepId)).rejects.toBeInstanceOf(InvalidStateError);
    expect((await second.getRun(runId)).steps.map((s) => [s.name, s.status])).toEqual([["fetch", "completed"]]);
  });
});
