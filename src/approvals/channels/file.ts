import { readFileSync } from "node:fs";
import { ConfigError } from "../../errors.js";
// The YAML parser loads with the first channels file read, not with the package.
import { yaml } from "../../policy/load.js";
import type { PolicySet } from "../../policy/schema.js";
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
    raw = yaml().parse(text);
  } catch (error) {
    throw new ConfigError(`the channels file ${path} is not valid YAML or JSON: ${(error as Error).message}`, { cause: error });
  }
  const expanded = expand(raw, env, "");
  const parsed = ApprovalChannelsSchema.safeParse(expanded);
  if (!parsed.success) throw new ConfigError(`invalid channels file ${path}: ${parsed.error.issues.map((issue) => `${issue.path.join(".") || "(root)"}: ${issue.message}`).join("; ")}`);
  return expanded as ApprovalChannelsOptions;
}

function expand(value: unknown, env: NodeJS.ProcessEnv, path: string, allowed?: RegExp): unknown {
  if (typeof value === "string") {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_match, name: string) => {
      // A policy set names only WARDEN_ variables: one pushed to a control plane cannot read its other secrets.
      if (allowed !== undefined && !allowed.test(name)) throw new ConfigError(`the policy set refers to \${${name}} at ${path}; only WARDEN_ variables may be read`);
      const found = env[name];
      if (found === undefined || found === "") throw new ConfigError(`the ${allowed ? "policy set" : "channels file"} refers to \${${name}} at ${path || "(root)"}, which is not set`);
      return found;
    });
  }
  if (Array.isArray(value)) return value.map((item, index) => expand(item, env, `${path}[${index}]`, allowed));
  if (value !== null && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, expand(item, env, path ? `${path}.${key}` : key, allowed)]));
  return value;
}

/**
 * The channels a policy set declares (`channels:` in `warden.yaml`), with each `${WARDEN_…}` secret
 * read from `env` (an unset one is a `ConfigError` naming it) and each policy's `approval.notify`
 * as the routing; undefined when the set declares none.
 * @example
 * import { channelsFromPolicySet, loadPolicyFile } from "agent-warden";
 * const channels = channelsFromPolicySet(loadPolicyFile("./warden.yaml"));
 */
export function channelsFromPolicySet(set: Pick<PolicySet, "channels" | "policies">, env: NodeJS.ProcessEnv = process.env): ApprovalChannelsOptions | undefined {
  if (set.channels === undefined) return undefined;
  const notify = Object.fromEntries(set.policies.filter((policy) => policy.approval?.notify !== undefined).map((policy) => [policy.id, [...policy.approval!.notify!]]));
  const resolved = { ...(expand(set.channels, env, "channels", /^WARDEN_/) as ApprovalChannelsOptions), ...(Object.keys(notify).length > 0 && { notify }) };
  const parsed = ApprovalChannelsSchema.safeParse(resolved);
  if (!parsed.success) throw new ConfigError(`invalid channels in the policy set: ${parsed.error.issues.map((issue) => `${issue.path.join(".") || "(root)"}: ${issue.message}`).join("; ")}`);
  return resolved;
}
