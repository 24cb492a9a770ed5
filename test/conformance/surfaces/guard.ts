import { classify, type Surface } from "../harness.js";

/** `warden.guard`: a governed function, inside the current run or a run of its own. */
export const surface: Surface = {
  name: "core: guard",
  async drive(call) {
    const governed = call.warden.guard(call.tool, (_args: Record<string, unknown>) => call.body(call.warden.signal), { signal: call.signal });
    try {
      await governed(call.args);
      return { outcome: "result", received: "the function's result" };
    } catch (error) {
      return classify(error, call.signal);
    }
  },
  cannot: (scenario) => (scenario === "llm-token-budget" ? "makes no model calls" : undefined),
};
