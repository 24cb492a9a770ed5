// agent-warden/openai-agents: Warden for the OpenAI Agents SDK (@openai/agents).
export { governAgent, GUARDRAIL_NAME } from "./govern.js";
export type { ApprovalMode, GovernAgentOptions } from "./govern.js";
export { tool } from "./names.js";
export { governedRun, resolveInterruptions } from "./run.js";
export type { GovernedRunOptions, InterruptionResolution } from "./run.js";
export { WardenTraceProcessor } from "./trace-processor.js";
export type { WardenTraceProcessorOptions } from "./trace-processor.js";
export { linkAgentsSpans } from "./otel-link.js";
export type { AgentsSpanLink, SpanOf, TracerProviderLike } from "./otel-link.js";
