/**
 * Cells of the matrix that do not hold yet, each with the reason. The suite expects them to fail
 * (`it.fails`), so fixing one turns it red until its line here is deleted: the list only shrinks.
 */
export const knownGaps: Record<string, string> = {
  "openai-agents: agent as tool / llm-token-budget": "model calls are not gated before they are made (a callModelInputFilter could); the trace processor only records their usage after",
  "openai-agents: handoff / llm-token-budget": "model calls are not gated before they are made (a callModelInputFilter could); the trace processor only records their usage after",
  "openai-agents: run / llm-token-budget": "model calls are not gated before they are made (a callModelInputFilter could); the trace processor only records their usage after",
  "openai-agents: streamed run / llm-token-budget": "model calls are not gated before they are made (a callModelInputFilter could); the trace processor only records their usage after",
};
