import { ActionType } from "../enums.js";

// Ordered: the first pattern that matches the tool name wins.
const rules: ReadonlyArray<readonly [RegExp, ActionType]> = [
  [/(^|[._-])(merge)(_?pr|_?pull)?/i, ActionType.PR_MERGE],
  [/(create|open)[._-]?(pr|pull)/i, ActionType.PR_CREATE],
  [/(update|edit)[._-]?(pr|pull)/i, ActionType.PR_UPDATE],
  [/(delete|remove)[._-]?branch/i, ActionType.BRANCH_DELETE],
  [/deploy|release|rollout/i, ActionType.DEPLOY],
  [/migrat/i, ActionType.DB_MIGRATE],
  [/secret|credential|vault|password|api[._-]?key/i, ActionType.SECRET_ACCESS],
  [/(^|[._-])(exec|shell|bash|run[._-]?(script|command)|script)/i, ActionType.SCRIPT_EXECUTE],
  [/config|setting/i, ActionType.CONFIG_CHANGE],
  [/^http\.(post|put|patch|delete)$/i, ActionType.API_WRITE],
];

// Every word any rule needs, in one pass: most tool names carry none of them and are settled by this
// test alone instead of by ten. Must stay a superset of the rules above.
const anyRuleWord = /merge|pr|pull|branch|deploy|release|rollout|migrat|secret|credential|vault|password|api|exec|shell|bash|run|script|config|setting|^http\./i;

/** Infers the semantic action of a tool from its name when no `actionHint` is given. */
export function classifyTool(toolName: string): ActionType {
  if (!anyRuleWord.test(toolName)) return ActionType.UNKNOWN;
  for (const [pattern, action] of rules) if (pattern.test(toolName)) return action;
  return ActionType.UNKNOWN;
}
