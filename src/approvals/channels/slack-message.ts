import type { ApprovalRecord } from "../../records.js";

const OUTCOME: Record<string, string> = {
  approved: ":white_check_mark: Approved",
  rejected: ":no_entry: Rejected",
  expired: ":hourglass: Timed out (nobody answered in time): not run",
  cancelled: ":octagonal_sign: Cancelled: not run",
};

/** Slack's mrkdwn control characters, escaped as Slack documents. */
function escape(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** @internal The notification text (also the fallback of the blocks). */
export function slackText(record: ApprovalRecord): string {
  if (record.status === "pending") return `${record.agentId} asks to run ${record.toolName}: approval needed`;
  return `${record.toolName} by ${record.agentId}: ${record.status}${record.reviewer ? ` by ${record.reviewer}` : ""}`;
}

/**
 * @internal The message: the call (tool, redacted arguments), the agent and its goal, the policy;
 * Approve / Reject while pending, the outcome once decided.
 */
export function slackBlocks(org: string, record: ApprovalRecord, options: { linkUrl?: string | undefined }): unknown[] {
  const args = clip(JSON.stringify(record.payload ?? null, null, 2), 2800);
  const fields = [
    { type: "mrkdwn", text: `*Tool*\n\`${escape(record.toolName)}\`` },
    { type: "mrkdwn", text: `*Agent*\n${escape(record.agentId)}` },
    { type: "mrkdwn", text: `*Policy*\n${escape(record.policyId ?? "(none)")}` },
    { type: "mrkdwn", text: `*Expires*\n<!date^${Math.floor(record.expiresAt / 1000)}^{date_short_pretty} {time}|${new Date(record.expiresAt).toISOString()}>` },
  ];
  const blocks: unknown[] = [
    { type: "header", text: { type: "plain_text", text: clip(`Approval needed: ${record.toolName}`, 150) } },
    { type: "section", fields },
  ];
  if (record.agentContext?.goal) blocks.push({ type: "section", text: { type: "mrkdwn", text: `*Goal*\n${escape(clip(record.agentContext.goal, 2900))}` } });
  if (record.reason) blocks.push({ type: "context", elements: [{ type: "mrkdwn", text: escape(clip(record.reason, 2900)) }] });
  blocks.push({ type: "section", text: { type: "mrkdwn", text: `*Arguments* (redacted)\n\`\`\`${escape(args)}\`\`\`` } });
  blocks.push({ type: "context", elements: [{ type: "mrkdwn", text: `Approval \`${record.approvalId}\` · run \`${escape(record.runId)}\`` }] });
  if (record.status === "pending") {
    const value = JSON.stringify({ org, approvalId: record.approvalId });
    blocks.push({
      type: "actions",
      block_id: `warden_${record.approvalId}`.slice(0, 255),
      elements: [
        { type: "button", action_id: "warden_approve", style: "primary", text: { type: "plain_text", text: "Approve" }, value },
        { type: "button", action_id: "warden_reject", style: "danger", text: { type: "plain_text", text: "Reject" }, value },
        ...(options.linkUrl ? [{ type: "button", action_id: "warden_open", text: { type: "plain_text", text: "Open" }, url: options.linkUrl }] : []),
      ],
    });
  } else {
    const who = record.reviewer && record.reviewer !== "warden" ? ` by ${escape(record.reviewer)}` : "";
    const why = record.decisionReason ? `: ${escape(clip(record.decisionReason, 2000))}` : "";
    blocks.push({ type: "section", text: { type: "mrkdwn", text: `*${OUTCOME[record.status] ?? record.status}*${who}${why}` } });
  }
  return blocks;
}
