import { expandLedgerEntry, Warden, type WardenEvent } from "agent-warden";
import { AGENT, CARD, ORCHESTRATOR, SECRET, tempStore, type Call, type Driven, type Scenario, type Surface } from "./harness.js";

export interface ScenarioResult {
  driven: Driven;
  bodyRan: boolean;
  /** The status recorded for the surface's call of the scenario's tool, if one was recorded. */
  status: string | undefined;
  /** Event types the ledger holds for that call (the whole ledger when there is no call record). */
  events: string[];
  /** Entries after the halt, if there was one. */
  afterHalt: string[] | undefined;
  /** Statuses of every tool call left unfinished (pending or awaiting approval). */
  unfinished: string[];
  /** Whether the secret appears anywhere in what was recorded. */
  secretFound: boolean;
}

const longWait = 3_000;

/** Runs one scenario on one surface, on a fresh store, and collects what the suite asserts on. */
export async function runScenario(surface: Surface, scenario: Scenario): Promise<ScenarioResult> {
  const store = tempStore();
  const clients: Warden[] = [];
  try {
    const { setup } = scenario;
    let token: string | undefined;
    if (setup.token) {
      const minter = new Warden({ agentId: ORCHESTRATOR, store: store.path });
      clients.push(minter);
      token = setup.token(minter);
      minter.close();
    }
    const warden = new Warden({ agentId: AGENT, store: store.path, policies: setup.policies, ...(token === undefined ? {} : { token }), onError: () => {} });
    clients.push(warden);
    const caller = new AbortController();
    let bodyRan = false;
    const body = async (signal?: AbortSignal): Promise<unknown> => {
      bodyRan = true;
      setup.whileRunning?.(warden);
      switch (setup.body ?? "returns") {
        case "throws":
          throw new Error("disk full");
        case "honours-signal":
          return new Promise((_, reject) => {
            if (signal?.aborted) return reject(signal.reason);
            signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
            setTimeout(() => reject(new Error("the tool was not stopped")), longWait).unref();
          });
        case "ignores-signal":
          await new Promise((resolve) => setTimeout(resolve, longWait).unref());
          return { finished: "late" };
        default:
          return { ok: true, order: 1042 };
      }
    };
    const reviewer = setup.reviewer;
    if (reviewer !== undefined && reviewer !== "none") {
      warden.on("approval.requested", (event: WardenEvent) => {
        const approvalId = event.data.approvalId as string;
        setTimeout(() => {
          try {
            if (reviewer === "approve") warden.approvals.approve(approvalId, { reviewer: "alice" });
            else if (reviewer === "reject") warden.approvals.reject(approvalId, { reviewer: "alice", reason: "not today" });
            else caller.abort(new Error("the caller gave up waiting"));
          } catch {
            // Already settled (a surface that decided on its own): the assertions say so.
          }
        }, 20);
      });
    }
    const call: Call = {
      warden,
      tool: scenario.tool,
      args: setup.args ?? { id: 1042 },
      body,
      signal: caller.signal,
      insideRun: setup.insideRun === true,
      modelUsage: setup.modelUsage ?? { inputTokens: 12, outputTokens: 7 },
      token,
      wireToken: token ?? warden.tokens.mint({ agentId: AGENT, scopes: ["*"], ttl: "1h" }),
    };
    let driven: Driven | undefined;
    if (call.insideRun) {
      await warden
        .run({ scenario: scenario.id }, async () => {
          await setup.before?.(warden);
          driven = await surface.drive(call);
        })
        .catch(() => {});
    } else {
      await setup.before?.(warden);
      driven = await surface.drive(call);
    }
    await warden.flush();
    return collect(warden, scenario, driven ?? { outcome: "failed", received: "the driver did not answer" }, bodyRan);
  } finally {
    for (const client of clients) client.close();
    store.dispose();
  }
}

function collect(warden: Warden, scenario: Scenario, driven: Driven, bodyRan: boolean): ScenarioResult {
  // The events the ledger records: a call that ended within its commit window is one entry for two.
  const entries = warden.ledger.entries({ limit: 1_000_000 }).flatMap(expandLedgerEntry);
  const called = entries.filter((e) => e.type === "tool.called" && (e.data as { toolName?: string }).toolName === scenario.tool && (e.data as { kind?: string }).kind !== "llm");
  const last = called.at(-1);
  let status: string | undefined;
  let events = entries.map((e) => e.type);
  if (last?.toolCallId) {
    status = warden.runRecord(last.runId!).toolCalls.find((tc) => tc.toolCallId === last.toolCallId)?.status;
    events = entries.filter((e) => e.toolCallId === last.toolCallId).map((e) => e.type);
  }
  const haltAt = entries.findIndex((e) => e.type === "agent.halted");
  const afterHalt = haltAt < 0 ? undefined : entries.slice(haltAt + 1).map((e) => e.type);
  const runs = warden.listRuns({ limit: 1000 }).map((r) => warden.runRecord(r.runId));
  const unfinished = runs.flatMap((r) => r.toolCalls.filter((tc) => tc.kind === "tool" && (tc.status === "pending" || tc.status === "awaiting_approval")).map((tc) => `${tc.toolName}:${tc.status}`));
  const recorded = JSON.stringify(entries) + JSON.stringify(runs) + JSON.stringify(warden.approvals.list({ limit: -1 }));
  const secretFound = recorded.includes(SECRET) || recorded.includes(CARD) || recorded.includes(CARD.replaceAll(" ", ""));
  return { driven, bodyRan, status, events, afterHalt, unfinished, secretFound };
}

export { AGENT };
