import type { RunRecord, ToolCallRecord } from "./records.js";

/**
 * Renders a run as a text tree: run ▸ steps ▸ tool calls with decision, policy and status, then
 * child runs. What `warden run <id>` prints, for logs and terminals.
 * @example
 * import { formatRunTree } from "agent-warden";
 * console.log(formatRunTree(await warden.getRun(runId), (id) => warden.getRun(id)));
 */
export async function formatRunTree(run: RunRecord, loadChild?: (runId: string) => RunRecord | Promise<RunRecord>, indent = ""): Promise<string> {
  const lines = [`${indent}Run ${run.runId}  agent=${run.agentId}  ${run.status.toUpperCase()}${run.tokenId ? `  token=${run.tokenId}` : ""}`];
  const items: Array<{ at: number; render: (prefix: string, last: boolean) => Promise<string[]> }> = [];
  const loose = run.toolCalls.filter((call) => call.stepId === undefined || !run.steps.some((step) => step.stepId === call.stepId));
  for (const step of run.steps) {
    const calls = run.toolCalls.filter((call) => call.stepId === step.stepId);
    items.push({
      at: step.startedAt,
      render: async (prefix, last) => [
        `${prefix}${last ? "└── " : "├── "}Step: ${step.name}  ${step.status}`,
        ...calls.flatMap((call, i) => renderCall(call, `${prefix}${last ? "    " : "│   "}`, i === calls.length - 1)),
      ],
    });
  }
  for (const call of loose) items.push({ at: call.startedAt, render: async (prefix, last) => renderCall(call, prefix, last) });
  if (loadChild) {
    for (const childId of run.childRunIds) {
      const child = await loadChild(childId);
      items.push({
        at: child.startedAt,
        render: async (prefix, last) => {
          const text = await formatRunTree(child, loadChild, "");
          const [head, ...rest] = text.split("\n");
          return [`${prefix}${last ? "└── " : "├── "}Sub-agent ${head}`, ...rest.map((line) => `${prefix}${last ? "    " : "│   "}${line}`)];
        },
      });
    }
  }
  items.sort((a, b) => a.at - b.at);
  for (const [i, item] of items.entries()) lines.push(...(await item.render(indent, i === items.length - 1)));
  return lines.join("\n");
}

function renderCall(call: ToolCallRecord, prefix: string, last: boolean): string[] {
  const branch = `${prefix}${last ? "└── " : "├── "}`;
  const under = `${prefix}${last ? "    " : "│   "}`;
  if (call.kind === "llm") {
    const usage = call.usage ? `  tokens=${call.usage.totalTokens ?? "?"} (in ${call.usage.inputTokens ?? "?"}, out ${call.usage.outputTokens ?? "?"})` : "";
    return [`${branch}LLM ${call.usage?.model ?? call.toolName}${usage}  ${call.status}`];
  }
  // A call only observed afterwards (a framework's trace) was never decided: say so, never "ALLOWED".
  const label = call.decision === undefined ? "OBSERVED" : decisionLabel(call.decision.action);
  const lines = [`${branch}${call.toolName}(${summarize(call.input)})  ${label}  ${call.status}`];
  const details: string[] = [];
  if (call.decision?.policyId) details.push(`Policy: ${call.decision.policyId}`);
  for (const match of call.decision?.matches ?? []) if (match.mode === "shadow") details.push(`Shadow: ${match.policyId} would ${match.action}`);
  if (call.blockedReason) details.push(`Reason: ${call.blockedReason}`);
  if (call.approval) {
    const a = call.approval;
    details.push(a.status === "pending" ? "Waiting for reviewer..." : `Approval: ${a.status}${a.reviewer ? ` by ${a.reviewer}` : ""}${a.decisionReason ? ` (${a.decisionReason})` : ""}`);
  }
  details.forEach((detail, i) => lines.push(`${under}${i === details.length - 1 ? "└── " : "├── "}${detail}`));
  return lines;
}

function decisionLabel(action: string): string {
  return action === "require_approval" ? "REQUIRES APPROVAL" : action === "block" ? "BLOCKED" : action === "warn" ? "WARNED" : "ALLOWED";
}

function summarize(input: unknown): string {
  if (input === null || typeof input !== "object") return input === undefined ? "" : JSON.stringify(input);
  const parts = Object.entries(input as Record<string, unknown>).map(([key, value]) => `${key}=${typeof value === "string" ? JSON.stringify(value) : JSON.stringify(value)}`);
  const text = parts.join(", ");
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
