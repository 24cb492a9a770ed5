import { classify, type Surface } from "../harness.js";

/**
 * The step-by-step lifecycle (ids in, ids out): `startRun`, `trackToolCall`, `waitForApproval`,
 * then `completeToolCall` or `failToolCall`, and `completeRun`. A block shows in the call's record.
 */
export const surface: Surface = {
  name: "core: lifecycle",
  async drive(call) {
    const { warden } = call;
    let runId: string | undefined;
    try {
      runId = call.insideRun ? warden.currentRun()?.runId : undefined;
      runId ??= await warden.startRun(undefined, { task: "conformance" });
      const toolCallId = await warden.trackToolCall(runId, call.tool, call.args, { signal: call.signal });
      const record = (await warden.getRun(runId)).toolCalls.find((tc) => tc.toolCallId === toolCallId);
      if (record?.status === "blocked") return { outcome: "refused", received: `status blocked: ${record.blockedReason}` };
      if (record?.status === "awaiting_approval") await warden.waitForApproval(toolCallId);
      let output: unknown;
      try {
        // A lifecycle caller runs the tool itself and passes it the client's halt signal.
        output = await call.body(warden.signal);
      } catch (error) {
        await warden.failToolCall(runId, toolCallId, error);
        const driven = classify(error, call.signal);
        return driven.outcome === "failed" ? { outcome: "failed", received: "the tool's error" } : driven;
      }
      await warden.completeToolCall(runId, toolCallId, output);
      return { outcome: "result", received: "status completed" };
    } catch (error) {
      return classify(error, call.signal);
    } finally {
      if (runId !== undefined && !call.insideRun) await warden.completeRun(runId).catch(() => {});
    }
  },
  cannot: (scenario) => {
    if (scenario === "llm-token-budget") return "makes no model calls";
    if (scenario === "halt-during-ignores-signal") return "the caller runs the tool itself, between two calls";
    return undefined;
  },
};
