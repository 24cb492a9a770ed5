import { ApprovalStatus, EventType } from "../../enums.js";
import type { WardenEvent } from "../../events.js";
import type { ApprovalRecord } from "../../records.js";
import type { Warden } from "../../warden.js";
import { ConfigError } from "../../errors.js";
import { ApprovalChannels, type ApprovalChannelsOptions } from "./channels.js";
import { channelsFromPolicySet } from "./file.js";

/**
 * Sends an embedded Warden's approval requests and outcomes to webhooks and Slack: the channels
 * given, or (without `options`) those the Warden's policy set declares (`channels:` in `warden.yaml`,
 * secrets read from `WARDEN_…` environment variables, routed by each policy's `approval.notify`).
 * Slack's buttons reach your own HTTP endpoint: pass its raw body and headers to
 * `channels.handleSlackInteraction`. Call `close()` (stops retries) before closing the Warden.
 * @example
 * import { Warden, attachApprovalChannels } from "agent-warden";
 * const warden = new Warden({ agentId: "billing-agent", policies: "./warden.yaml" });
 * const channels = attachApprovalChannels(warden); // the file's `channels:`
 */
export function attachApprovalChannels(warden: Warden, options?: ApprovalChannelsOptions): ApprovalChannels & { close(): void } {
  const resolved = options ?? channelsFromPolicySet(warden.policies);
  if (resolved === undefined) throw new ConfigError("the policy set declares no channels: add `channels:` to the policy file, or pass the channels to attachApprovalChannels");
  const channels = new ApprovalChannels(resolved, {
    decide: async (_org, approvalId, status, { via: _via, ...input }) => (status === ApprovalStatus.APPROVED ? warden.approvals.approve(approvalId, input) : warden.approvals.reject(approvalId, input)),
    get: async (_org, approvalId) => warden.approvals.get(approvalId),
    onError: (error) => warden.reportError(error, "channels"),
  });
  const recordOf = (event: WardenEvent): ApprovalRecord | undefined => {
    const approvalId = event.data.approvalId;
    if (typeof approvalId !== "string") return undefined;
    try {
      return warden.approvals.get(approvalId);
    } catch (error) {
      warden.reportError(error, "channels");
      return undefined;
    }
  };
  const off = [
    warden.on(EventType.APPROVAL_REQUESTED, (event) => {
      const record = recordOf(event);
      if (record) channels.requested(event.org, record);
    }),
    ...[EventType.APPROVAL_APPROVED, EventType.APPROVAL_REJECTED].map((type) =>
      warden.on(type, (event) => {
        const record = recordOf(event);
        if (record && record.status !== ApprovalStatus.PENDING) channels.decided(event.org, record);
      }),
    ),
  ];
  const close = channels.close.bind(channels);
  channels.close = () => {
    for (const unsubscribe of off) unsubscribe();
    close();
  };
  return channels;
}
