export { createGovernedFetch, createTrackedFetch } from "./governed.js";
export type { GovernedFetchOptions } from "./governed.js";
export { describeRequest } from "./describe.js";
export type { HttpCall } from "./describe.js";
export type { OutboundRedaction } from "./redact.js";
