import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import express, { type ErrorRequestHandler } from "express";
import { AgentAuthError, requireAgentPermission } from "agent-warden/express";
import { type Call, type Driven, type Surface } from "../harness.js";

/**
 * A real Express 5 app on a loopback port: POST /tool is guarded by `requireAgentPermission(tool, { warden })`
 * and its handler is the tool, given `request.agent.signal`. The agent calls it with its delegation token
 * (the scenario's, or one minted for it with every scope).
 */
export const surface: Surface = {
  name: "express: requireAgentPermission",
  async drive(call) {
    const { server, url, settled } = await serve(call);
    try {
      const token = call.wireToken;
      let response: Response;
      try {
        response = await fetch(url, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify(call.args), signal: call.signal });
      } catch (error) {
        if (call.signal.aborted) return { outcome: "aborted", received: "the caller's request was aborted" };
        throw error;
      }
      // Refusals are RFC 9457 problems the guard answers itself; the app's error handler below sees only the tool failing.
      const problem = response.headers.get("content-type")?.startsWith("application/problem+json") === true;
      const body = (await response.json().catch(() => ({}))) as { code?: string; error?: string };
      return outcomeOf(response.status, problem ? body.code : body.error);
    } finally {
      await settled();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  },
  cannot: (scenario) => (scenario === "llm-token-budget" ? "makes no model calls" : undefined),
};

function outcomeOf(status: number, error: string | undefined): Driven {
  const received = `HTTP ${status}${error === undefined ? "" : ` ${error}`}`;
  if (status === 200) return { outcome: "result", received };
  if (status === 403 && error === "agent_halted") return { outcome: "halted", received };
  if (status === 401 || status === 403) return { outcome: "refused", received };
  return { outcome: "failed", received };
}

async function serve(call: Call): Promise<{ server: Server; url: string; settled: () => Promise<void> }> {
  const open = new Set<Promise<void>>();
  const app = express();
  app.use((_request, response, next) => {
    const closed = new Promise<void>((resolve) => response.once("close", () => resolve()));
    open.add(closed);
    void closed.finally(() => open.delete(closed));
    next();
  });
  const amount = (request: express.Request) => (typeof request.body?.amount === "number" ? { amount: request.body.amount as number, currency: request.body.currency as string | undefined } : undefined);
  app.post("/tool", express.json(), requireAgentPermission(call.tool, { warden: call.warden, amount }), async (request, response) => {
    response.json((await call.body(request.agent?.signal)) ?? null);
  });
  app.use(((error, _request, response, next) => {
    if (response.headersSent) return next(error);
    if (AgentAuthError.isInstance(error)) return void response.status(500).json({ error: "refusal_reached_the_app", message: String(error) });
    response.status(500).json({ error: "tool_failed", message: String(error) });
  }) as ErrorRequestHandler);
  const server: Server = await new Promise((resolve) => {
    const listening = app.listen(0, "127.0.0.1", () => resolve(listening));
  });
  // The guard records when the response ends; a handler that ignores a halt runs on, unanswered, after it.
  const settled = async () => {
    await Promise.race([Promise.allSettled(open), new Promise((resolve) => setTimeout(resolve, 200))]);
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/tool`, settled };
}
