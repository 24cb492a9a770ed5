// `warden policy push`: publishes a policy file to a control plane, after validating it here (with
// line numbers) and showing what changes against the version in force.
import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { isDeepStrictEqual } from "node:util";
import { PolicyError } from "../errors.js";
import { parsePolicySet, parsePolicyText } from "../policy/load.js";
import type { PolicySet } from "../policy/schema.js";
import { wireResponses } from "../wire/responses.js";
import { controlPlane } from "./operator.js";

const EXIT_USAGE = 2;

/** One line per difference between two policy sets: `+` added, `-` removed, `~` changed. */
export function policyDiff(before: PolicySet, after: PolicySet): string[] {
  const lines: string[] = [];
  if (before.default !== after.default) lines.push(`~ default: ${before.default} → ${after.default}`);
  const sections = [
    ["policy", before.policies, after.policies],
    ["limit", before.limits, after.limits],
    ["budget", before.budgets, after.budgets],
  ] as const;
  for (const [kind, was, now] of sections) {
    const old = new Map<string, unknown>(was.map((item) => [item.id, item]));
    const next = new Map<string, unknown>(now.map((item) => [item.id, item]));
    for (const [id, item] of next) {
      if (!old.has(id)) lines.push(`+ ${kind} "${id}"${describe(item)}`);
      else if (!isDeepStrictEqual(old.get(id), item)) lines.push(`~ ${kind} "${id}"${changed(old.get(id), item)}`);
    }
    for (const id of old.keys()) if (!next.has(id)) lines.push(`- ${kind} "${id}"`);
  }
  return lines;
}

const describe = (item: unknown) => {
  const { action, mode } = item as { action?: string; mode?: string };
  return action ? ` (${action}${mode === "shadow" ? ", shadow" : ""})` : "";
};

function changed(before: unknown, after: unknown): string {
  const a = before as Record<string, unknown>;
  const b = after as Record<string, unknown>;
  const fields = [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((key) => !isDeepStrictEqual(a[key], b[key]));
  if (fields.includes("action")) return `: action ${String(a.action)} → ${String(b.action)}${fields.length > 1 ? `; also ${fields.filter((f) => f !== "action").join(", ")}` : ""}`;
  return `: ${fields.join(", ")}`;
}

interface PushOptions {
  comment?: string;
  dryRun: boolean;
}

export function registerPolicyPushCommand(policy: Command, program: Command, print: (value: unknown, text: () => string) => void): void {
  policy
    .command("push <file>")
    .description("validate a policy file (YAML or JSON), show what changes, and publish it as the organization's next version on the control plane (--url, --api-key of an admin)")
    .option("--comment <text>", "why, kept with the version")
    .option("--dry-run", "validate and show the changes, publish nothing", false)
    .action(async (file: string, opts: PushOptions) => {
      const { url, apiKey } = program.opts<{ url?: string; apiKey?: string }>();
      if (!url || !apiKey) throw new CommanderError(EXIT_USAGE, "warden.url", "policy push needs the control plane: --url <http://host:port> and --api-key <admin key> (or WARDEN_URL, WARDEN_API_KEY)");
      let text: string;
      try {
        text = readFileSync(file, "utf8");
      } catch (cause) {
        throw new PolicyError([{ message: `cannot read policy file (${(cause as NodeJS.ErrnoException).code ?? String(cause)})` }], file);
      }
      // Validated here first, so a mistake is reported at its line before anything is sent.
      const next = parsePolicyText(text, file);
      const call = controlPlane(url, apiKey);
      const current = wireResponses().PolicyVersionSchema.parse(await call("GET", "/policies/current"));
      const diff = policyDiff(parsePolicySet(current.policies ?? {}), next);
      if (diff.length === 0) {
        print({ version: current.version, changed: false, diff }, () => `no changes: version ${current.version} already holds ${file}`);
        return;
      }
      if (opts.dryRun) {
        print({ version: current.version, changed: true, published: false, diff }, () => [`changes against version ${current.version} (dry run, nothing published):`, ...diff.map((line) => `  ${line}`)].join("\n"));
        return;
      }
      // If-Match: a version published by someone else in between is not silently overwritten.
      const published = wireResponses().PolicyVersionSchema.parse(await call("PUT", "/policies", { policies: text, ...(opts.comment && { comment: opts.comment }) }, { "if-match": current.etag }));
      print({ version: published.version, previous: current.version, changed: true, published: true, diff }, () =>
        [`published version ${published.version} (was ${current.version}):`, ...diff.map((line) => `  ${line}`), "connected agents apply it within a moment"].join("\n"),
      );
    });
}
