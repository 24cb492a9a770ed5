// agent-warden/hook: coding-agent hooks (Claude Code's PreToolUse / PostToolUse / SessionEnd events).
// The `warden hook …` commands read the event on stdin and set the exit code from these answers.
export { HookEventSchema, jsonAnswer } from "./event.js";
export type { HookEvent, HookAnswer, PreToolUseOutput } from "./event.js";
export { preToolUse, PERMISSION_PROMPT } from "./pre-tool-use.js";
export type { PreToolUseOptions } from "./pre-tool-use.js";
export { postToolUse, sessionEnd } from "./post-tool-use.js";
