import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ActionType } from "agent-warden";
import { classifyTool } from "../src/policy/classify.js";

// The rules as written, without the one-pass pre-test: classifyTool must agree with them on every name.
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
const reference = (name: string) => rules.find(([pattern]) => pattern.test(name))?.[1] ?? ActionType.UNKNOWN;

const fragments = ["merge", "MERGE", "_pr", "pull", "create", "open", "update", "edit", "delete", "remove", "branch", "deploy", "Release", "rollout", "migrate", "secret", "Credential", "vault", "password", "api", "key", "exec", "shell", "bash", "run", "script", "command", "config", "setting", "http", "post", "put", "patch", ".", "_", "-", "x", "get", "order"];

describe("classifyTool", () => {
  it("agrees with its rules tested one by one on names built from their words", () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...fragments), { maxLength: 5 }), (parts) => {
        const name = parts.join("");
        expect(classifyTool(name)).toBe(reference(name));
      }),
      { numRuns: 3000 },
    );
  });

  it("classifies common names", () => {
    expect(classifyTool("github.merge_pr")).toBe(ActionType.PR_MERGE);
    expect(classifyTool("http.post")).toBe(ActionType.API_WRITE);
    expect(classifyTool("read_order")).toBe(ActionType.UNKNOWN);
    expect(classifyTool("get_api_key")).toBe(ActionType.SECRET_ACCESS);
  });
});
