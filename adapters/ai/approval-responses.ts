import type { ModelMessage, ToolApprovalResponse, ToolModelMessage } from "ai";
import { InvalidStateError, NotFoundError, type Warden } from "agent-warden";

/**
 * A `tool-approval-request` whose reviewer has not answered in Warden yet.
 * @example
 * import { approvalResponses } from "agent-warden/ai";
 * for (const request of approvalResponses(warden, result).pending) console.log(request.toolName, request.wardenApprovalId);
 */
export interface PendingApproval {
  /** The AI SDK's approval id. */
  approvalId: string;
  toolCallId: string;
  toolName: string;
  /** Warden's approval id: what a reviewer approves with `warden.approvals.approve(id)` or the CLI. */
  wardenApprovalId: string | undefined;
}

/**
 * What `approvalResponses` found.
 * @example
 * import { approvalResponses, type ApprovalResponses } from "agent-warden/ai";
 * const { message, responses }: ApprovalResponses = approvalResponses(warden, result);
 */
export interface ApprovalResponses {
  /** The `tool` message to append before calling again; undefined while no request has been decided. */
  message: ToolModelMessage | undefined;
  /** The decided requests, one `tool-approval-response` each (the parts of `message`). */
  responses: ToolApprovalResponse[];
  /** Requests still waiting for a reviewer. */
  pending: PendingApproval[];
}

/**
 * Turns Warden's decisions on the open `tool-approval-request`s into the AI SDK's
 * `tool-approval-response`s: append `message` to the conversation and call again; an approved call
 * runs, a rejected or expired one reaches the model as `execution-denied`. Requests Warden did not
 * raise are left to the app.
 * @example
 * import { approvalResponses } from "agent-warden/ai";
 * const { message, pending } = approvalResponses(warden, result);
 * if (message) messages.push(...result.response.messages, message);
 */
export function approvalResponses(warden: Warden, source: readonly ModelMessage[] | { readonly response: { readonly messages: readonly ModelMessage[] } }): ApprovalResponses {
  const messages = "response" in source ? source.response.messages : source;
  const answered = new Set<string>();
  const requests: Array<{ approvalId: string; toolCallId: string }> = [];
  for (const message of messages) {
    if (typeof message.content === "string") continue;
    for (const part of message.content) {
      if (part.type === "tool-approval-response") answered.add(part.approvalId);
      else if (part.type === "tool-approval-request" && part.isAutomatic !== true) requests.push({ approvalId: part.approvalId, toolCallId: part.toolCallId });
    }
  }
  const responses: ToolApprovalResponse[] = [];
  const pending: PendingApproval[] = [];
  for (const { approvalId, toolCallId } of requests) {
    if (answered.has(approvalId)) continue;
    let handle;
    try {
      handle = warden.resumeToolCall(toolCallId);
    } catch (error) {
      if (error instanceof NotFoundError) continue;
      // Already settled and recorded (a rejection answered once before, say): still a refusal.
      if (error instanceof InvalidStateError) {
        responses.push({ type: "tool-approval-response", approvalId, approved: false, reason: error.message });
        continue;
      }
      throw error;
    }
    const { decision } = handle;
    if (decision.action === "require_approval") pending.push({ approvalId, toolCallId, toolName: handle.toolName, wardenApprovalId: handle.approval?.approvalId });
    else responses.push({ type: "tool-approval-response", approvalId, approved: decision.action !== "block", reason: decision.reason });
  }
  return { message: responses.length > 0 ? { role: "tool", content: responses } : undefined, responses, pending };
}
