import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { ConfigError } from "../../errors.js";
import { ApprovalChannelsSchema, type ApprovalChannelsOptions } from "./channels.js";

/**
 * Reads channel settings from a YAML or JSON file (the `--channels` file of `warden serve`).
 * `${NAME}` in a string is replaced by the environment variable NAME, so secrets stay out of the file;
 * an unset variable is an error, not an empty secret.
 * @example
 * import { loadApprovalChannels } from "agent-warden";
 * const channels = loadApprovalChannels("./warden-channels.yaml");
 */
export function loadApprovalChannels(path: string, env: NodeJS.ProcessEnv = process.env): ApprovalChannelsOptions {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new ConfigError(`cannot read the channels file ${path}: ${(error as Error).message}`, { cause: error });
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (error) {
    throw new ConfigError(`the channels file ${path} is not valid YAML or JSON: ${(error as Error).message}`, { cause: error });
  }
  const expanded = expand(raw, env, "");
  const parsed = ApprovalChannelsSchema.safeParse(expanded);
  if (!parsed.success) throw new ConfigError(`invalid channels file ${path}: ${parsed.error.issues.map((issue) => `${issue.path.join(".") || "(root)"}: ${issue.message}`).join("; ")}`);
  return expanded as ApprovalChannelsOptions;
}

function expand(value: unknown, env: NodeJS.ProcessEnv, path: string): unknown {
  if (typeof value === "string") {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_match, name: string) => {
      const found = env[name];
      if (found === undefined || found === "") throw new ConfigError(`the channels file refers to \${${name}} at ${path || "(root)"}, which is not set`);
      return found;
    });
  }
  if (Array.isArray(value)) return value.map((item, index) => expand(item, env, `${path}[${index}]`));
  if (value !== null && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, expand(item, env, path ? `${path}.${key}` : key)]));
  return value;
}
