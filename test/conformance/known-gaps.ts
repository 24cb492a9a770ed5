/**
 * Cells of the matrix that do not hold yet, each with the reason. The suite expects them to fail
 * (`it.fails`), so fixing one turns it red until its line here is deleted: the list only shrinks.
 */
export const knownGaps: Record<string, string> = {
  "openai-agents: agent as tool / llm-token-budget": "model calls are not gated before they are made (a callModelInputFilter could); the trace processor only records their usage after",
  "openai-agents: handoff / llm-token-budget": "model calls are not gated before they are made (a callModelInputFilter could); the trace processor only records their usage after",
  "openai-agents: run / llm-token-budget": "model calls are not gated before they are made (a callModelInputFilter could); the trace processor only records their usage after",
  "openai-agents: streamed run / llm-token-budget": "model calls are not gated before they are made (a callModelInputFilter could); the trace processor only records their usage after",
  "langchain: middleware / llm-token-budget": "the middleware governs tool calls only: model calls are not gated before they are made (a wrapModelCall could); add WardenCallbackHandler to the agent to refuse them",
  "express: requireAgentPermission / halt-before-no-run": "the guard refuses a halted agent's token before any call is recorded",
  "express: requireAgentPermission / halt-of-delegator": "the guard refuses a token a halt invalidated before any call is recorded",
};
