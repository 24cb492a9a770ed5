export { ApprovalChannels, ApprovalChannelsSchema, APPROVAL_CHANNEL_EVENTS } from "./channels.js";
export type { ApprovalChannelsOptions, ApprovalChannelEvent, ApprovalDelivery, ApprovalDeliveryLog, ApprovalDeliveryMessage, ApprovalChannelsBackend, ChannelResponse, DeliveryFilter } from "./channels.js";
export type { ApprovalLinkClaims } from "./links.js";
export { signWebhook, verifySlackSignature } from "./signing.js";
export { attachApprovalChannels } from "./attach.js";
export { channelsFromPolicySet, loadApprovalChannels } from "./file.js";
