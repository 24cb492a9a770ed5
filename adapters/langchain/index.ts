export { wardenMiddleware, approvalInterrupts } from "./middleware.js";
export type { WardenMiddlewareOptions, WardenApprovalInterrupt } from "./middleware.js";
export { WardenCallbackHandler } from "./callback-handler.js";
export type { WardenCallbackHandlerOptions } from "./callback-handler.js";
