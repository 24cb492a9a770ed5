import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { FetchError } from "ofetch";
import { createGovernedFetch } from "agent-warden/fetch";
import { classify, type Call, type Surface } from "../harness.js";

/**
 * A real local HTTP server is the tool: POST /tool runs the body (its signal aborts when the connection
 * closes) and answers 200 with the result or 500 with the error. The agent calls it through
 * `createGovernedFetch`, named as the scenario's tool, with the arguments as the JSON body.
 */
export const surface: Surface = {
  name: "fetch: createGovernedFetch",
  async drive(call) {
    const { server, origin, settled } = await serve(call);
    try {
      const http = createGovernedFetch(call.warden, { toolName: () => call.tool, defaults: { baseURL: origin, retry: false } });
      try {
        await http("/tool", { method: "POST", body: call.args, signal: call.signal });
        return { outcome: "result", received: "HTTP 200 with the result" };
      } catch (error) {
        if (error instanceof FetchError && error.status !== undefined) return { outcome: "failed", received: `throws FetchError ${error.status}` };
        return classify(error, call.signal);
      }
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await settled();
    }
  },
  cannot: (scenario) => {
    if (scenario === "llm-token-budget") return "makes no model calls";
    if (scenario === "spend-budget") return "a request's amount is at args.body.amount: a budget for HTTP names it (spend.amount)";
    return undefined;
  },
};

async function serve(call: Call): Promise<{ server: Server; origin: string; settled: () => Promise<void> }> {
  const pending = new Set<Promise<void>>();
  const server = createServer((request, response) => {
    const gone = new AbortController();
    response.once("close", () => gone.abort(new Error("the client went away")));
    const handled = (async () => {
      for await (const _ of request);
      try {
        const output = await call.body(gone.signal);
        response.setHeader("content-type", "application/json");
        response.end(JSON.stringify(output ?? null));
      } catch (error) {
        response.statusCode = 500;
        response.end(JSON.stringify({ error: String(error) }));
      }
    })();
    pending.add(handled);
    void handled.finally(() => pending.delete(handled));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  // A body that ignores its signal goes on for a while after the halt; the scenario does not wait for it.
  const settled = async () => void (await Promise.race([Promise.allSettled(pending), new Promise((resolve) => setTimeout(resolve, 50))]));
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, settled };
}
