import { classify, type Surface } from "../harness.js";

/** `warden.run` + `run.tool`: refusals throw their `WardenError`; the tool's own error is rethrown. */
export const surface: Surface = {
  name: "core: run.tool",
  async drive(call) {
    try {
      await call.warden.run({ task: "conformance" }, (run) => run.tool(call.tool, call.args, ({ signal }) => call.body(signal), { signal: call.signal }));
      return { outcome: "result", received: "the tool's result" };
    } catch (error) {
      return classify(error, call.signal);
    }
  },
  cannot: (scenario) => (scenario === "llm-token-budget" ? "makes no model calls" : undefined),
};
