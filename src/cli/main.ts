import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { Command, CommanderError, Option } from "commander";
import packageJson from "../../package.json" with { type: "json" };
import { WardenError } from "../errors.js";
import { formatRunTree } from "../format.js";
import { PolicyEngine } from "../policy/engine.js";
import { classifyTool } from "../policy/classify.js";
import { loadPolicyFile } from "../policy/load.js";
import { Warden } from "../warden.js";
import { localOperator, remoteOperator, type Operator } from "./operator.js";
import { registerHookCommand } from "./hook.js";
import { registerPolicyPushCommand } from "./policy-push.js";
import { registerMcpGatewayCommand } from "./mcp-gateway.js";
import { registerMcpPinsCommand } from "./mcp-pins.js";
import { registerServerCommands } from "./server.js";
import { registerWitnessCommand } from "./witness.js";
import { registerEvidenceCommands, registerLedgerVerifyCommand, registerVerifyCommand } from "./evidence.js";
import type { ActionType, ApprovalStatus, RunStatus } from "../enums.js";

/** Exit codes: 0 ok, 1 a failure the command reports (a broken ledger, a token that does not verify), 2 bad usage or input. */
const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

interface GlobalOptions {
  store: string;
  org: string;
  json: boolean;
  actor: string;
  url?: string;
  apiKey?: string;
}

function open(program: Command, extra: { policies?: string; existing?: boolean } = {}): Warden {
  const options = program.opts<GlobalOptions>();
  // A read on a mistyped --store would create an empty store and answer "nothing here" while the agent works elsewhere.
  if (extra.existing && options.store !== ":memory:" && !existsSync(options.store)) {
    throw new CommanderError(EXIT_USAGE, "warden.storeMissing", `no store at ${resolve(options.store)}: pass the agent's store with --store (or WARDEN_STORE), or --url for a control plane`);
  }
  // The CLI reads and decides for others: it governs no calls of its own, so an empty set is deliberate.
  return new Warden({ agentId: "warden-cli", store: options.store, organization: options.org, policies: extra.policies ?? { version: 1, default: "allow", policies: [] } });
}

function print(program: Command, value: unknown, text: () => string): void {
  if (program.opts<GlobalOptions>().json) console.log(JSON.stringify(value, null, 2));
  else console.log(text());
}

async function withWarden<T>(program: Command, fn: (warden: Warden) => T | Promise<T>, extra: { existing?: boolean } = {}): Promise<T> {
  const warden = open(program, extra);
  try {
    return await fn(warden);
  } finally {
    warden.close();
  }
}

/** Who acts: locally `--actor`; against a control plane the API key's own name, unless `--actor` is given. */
function actorFor(program: Command): string | undefined {
  return program.opts<GlobalOptions>().url && program.getOptionValueSource("actor") !== "cli" ? undefined : program.opts<GlobalOptions>().actor;
}

/** Runs an operator command against the control plane when `--url` is given, else against the local store. */
async function withOperator<T>(program: Command, fn: (operator: Operator) => Promise<T>, extra: { existing?: boolean } = {}): Promise<T> {
  const { url, apiKey } = program.opts<GlobalOptions>();
  if (url) {
    if (!apiKey) throw new CommanderError(EXIT_USAGE, "warden.apiKey", "--url needs --api-key (or WARDEN_API_KEY): a reviewer key to decide approvals, an admin key to halt");
    return fn(remoteOperator(url, apiKey));
  }
  return withWarden(program, (warden) => fn(localOperator(warden)), extra);
}

const list = (value: string) => value.split(",").map((s) => s.trim()).filter(Boolean);

function parseMoney(text: string): { amount: number; currency: string } {
  const match = /^(\d+)\s*([A-Za-z]{3})$/.exec(text.trim());
  if (!match) throw new CommanderError(EXIT_USAGE, "warden.money", `invalid amount "${text}": use minor units and a currency, e.g. 50000EUR`);
  return { amount: Number(match[1]), currency: match[2]!.toUpperCase() };
}

export function buildProgram(): Command {
  const program = new Command("warden")
    .description("Runtime governance for AI agents: runs, approvals, halts, tokens and the audit ledger.")
    .addOption(new Option("--store <path>", "SQLite store").env("WARDEN_STORE").default("./.warden/warden.db"))
    .addOption(new Option("--org <id>", "organization").env("WARDEN_ORGANIZATION").default("default"))
    .addOption(new Option("--actor <name>", "who is acting, for the ledger").env("USER").default("cli"))
    .addOption(new Option("--url <url>", "a control plane (warden serve), or its replicas separated by commas: operator commands go to it instead of the store").env("WARDEN_URL"))
    .addOption(new Option("--api-key <key>", "API key for --url").env("WARDEN_API_KEY"))
    .option("--json", "print JSON", false)
    .version(packageJson.version, "-V, --version", "print the version of agent-warden")
    .showHelpAfterError()
    .exitOverride();

  program
    .command("runs")
    .description("list recent runs")
    .option("--agent <id>")
    .option("--status <status>", "running | completed | failed")
    .option("--trace <id>")
    .option("--limit <n>", "how many", "20")
    .action(async (opts: { agent?: string; status?: RunStatus; trace?: string; limit: string }) => {
      await withOperator(program, async (operator) => {
        const runs = await operator.runs({ agentId: opts.agent, status: opts.status, traceId: opts.trace, limit: Number(opts.limit) });
        print(program, runs, () => (runs.length === 0 ? "no runs" : runs.map((r) => `${r.runId}  ${r.agentId.padEnd(16)} ${r.status.padEnd(9)} ${new Date(r.startedAt).toISOString()}${r.parentRunId ? `  parent=${r.parentRunId}` : ""}`).join("\n")));
      }, { existing: true });
    });

  program
    .command("run <id>")
    .description("show a run as a tree: steps, tool calls, decisions, approvals, sub-agent runs")
    .action(async (id: string) => {
      await withWarden(program, async (warden) => {
        const run = warden.runRecord(id);
        if (program.opts<GlobalOptions>().json) print(program, run, () => "");
        else console.log(await formatRunTree(run, (child) => warden.runRecord(child)));
      }, { existing: true });
    });

  program
    .command("approvals")
    .description("list approval requests")
    .option("--status <status>", "pending | approved | rejected | expired | cancelled | all", "pending")
    .action(async (opts: { status: string }) => {
      await withOperator(program, async (operator) => {
        const approvals = await operator.approvals(opts.status === "all" ? undefined : (opts.status as ApprovalStatus));
        print(program, approvals, () =>
          approvals.length === 0
            ? `no ${opts.status === "all" ? "" : `${opts.status} `}approvals`
            : approvals.map((a) => `${a.approvalId}  ${a.status.padEnd(9)} ${a.agentId} → ${a.toolName}(${JSON.stringify(a.payload)})${a.policyId ? `  policy=${a.policyId}` : ""}${a.agentContext?.goal ? `  goal="${a.agentContext.goal}"` : ""}`).join("\n"),
        );
      }, { existing: true });
    });

  for (const verdict of ["approve", "reject"] as const) {
    program
      .command(`${verdict} <id>`)
      .description(`${verdict} a pending approval request`)
      .option("--reviewer <name>", "who decides (default: --actor)")
      .option("--reason <text>")
      .action(async (id: string, opts: { reviewer?: string; reason?: string }) => {
        await withOperator(program, async (operator) => {
          const record = await operator.decide(id, verdict, { reviewer: opts.reviewer ?? actorFor(program), reason: opts.reason });
          print(program, record, () => `${record.approvalId} ${record.status} by ${record.reviewer}`);
        }, { existing: true });
      });
  }

  const ledger = program.command("ledger").description("the audit ledger");
  registerLedgerVerifyCommand(program, ledger);
  ledger
    .command("export")
    .description("write every entry as JSON Lines")
    .option("--out <file>", "file to write (default: stdout)")
    .action(async (opts: { out?: string }) => {
      await withWarden(program, async (warden) => {
        const count = await warden.ledger.exportJsonl(opts.out ?? process.stdout);
        if (opts.out) console.error(`wrote ${count} entries to ${opts.out}`);
      });
    });

  const policy = program.command("policy").description("policy files");
  policy
    .command("check <file>")
    .description("validate a policy file; with --call, print the decision for a sample call")
    .option("--call <json>", 'a sample call: {"tool":"deploy","args":{"environment":"production"},"agent":"a"}')
    .action((file: string, opts: { call?: string }) => {
      const set = loadPolicyFile(file);
      if (!opts.call) {
        print(program, { ok: true, policies: set.policies.length, limits: set.limits.length, budgets: set.budgets.length }, () => `${file}: OK (${set.policies.length} policies, ${set.limits.length} limits, ${set.budgets.length} budgets, default ${set.default})`);
        return;
      }
      let call: { tool?: unknown; args?: unknown; agent?: unknown; action?: unknown; environment?: unknown; metadata?: unknown };
      try {
        call = JSON.parse(opts.call);
      } catch {
        throw new CommanderError(EXIT_USAGE, "warden.call", "--call is not valid JSON");
      }
      if (typeof call.tool !== "string") throw new CommanderError(EXIT_USAGE, "warden.call", '--call needs a "tool" string');
      const evaluation = new PolicyEngine(set).evaluate({
        tool: call.tool,
        action: (typeof call.action === "string" ? call.action : classifyTool(call.tool)) as ActionType,
        agent: typeof call.agent === "string" ? call.agent : "agent",
        environment: typeof call.environment === "string" ? call.environment : undefined,
        args: call.args ?? {},
        metadata: call.metadata,
      });
      print(program, evaluation, () =>
        [`decision: ${evaluation.action}${evaluation.decidedBy ? ` (policy ${evaluation.decidedBy.policyId}: ${evaluation.decidedBy.reason})` : " (default)"}`, ...evaluation.matches.map((m) => `  matched ${m.policyId}: ${m.action}${m.mode === "shadow" ? " [shadow]" : ""}`)].join("\n"),
      );
    });

  registerPolicyPushCommand(policy, program, (value, text) => print(program, value, text));

  const target = (command: Command) => command.option("--agent <id>", "one agent").option("--group <name>", "a group of agents").option("--run <id>", "one run");
  target(program.command("halt").description("emergency halt: the organization, or one agent, group or run"))
    .requiredOption("--reason <text>", "why (recorded in the ledger)")
    .action(async (opts: { agent?: string; group?: string; run?: string; reason: string }) => {
      await withOperator(program, async (operator) => {
        const record = await operator.halt({ agentId: opts.agent, group: opts.group, runId: opts.run, reason: opts.reason, actor: actorFor(program) });
        print(program, record, () => `HALTED ${record.scope}${record.target ? ` ${record.target}` : ""}: ${record.reason} (${record.haltId})`);
      });
    });
  target(program.command("resume").description("lift a halt with exactly this target"))
    .option("--reason <text>")
    .action(async (opts: { agent?: string; group?: string; run?: string; reason?: string }) => {
      await withOperator(program, async (operator) => {
        const lifted = await operator.resume({ agentId: opts.agent, group: opts.group, runId: opts.run, reason: opts.reason, actor: actorFor(program) });
        print(program, lifted, () => (lifted.length === 0 ? "nothing to resume for that target" : lifted.map((h) => `resumed ${h.scope}${h.target ? ` ${h.target}` : ""}`).join("\n")));
      });
    });
  program
    .command("status")
    .description("halts in force, pending approvals, ledger integrity")
    .action(async () => {
      await withOperator(program, async (operator) => {
        const status = { halts: await operator.activeHalts(), pendingApprovals: (await operator.approvals("pending")).length, ledger: await operator.verifyLedger() };
        print(program, status, () =>
          [
            status.halts.length === 0 ? "running: no halts in force" : status.halts.map((h) => `HALTED ${h.scope}${h.target ? ` ${h.target}` : ""}: ${h.reason} (since ${new Date(h.createdAt).toISOString()}${h.actor ? `, by ${h.actor}` : ""})`).join("\n"),
            `pending approvals: ${status.pendingApprovals}`,
            status.ledger.ok ? `ledger: ${status.ledger.entries} entries, verified` : `ledger: BROKEN${status.ledger.firstBadSeq === undefined ? "" : ` at entry ${status.ledger.firstBadSeq}`}`,
          ].join("\n"),
        );
      });
    });

  const token = program.command("token").description("delegation tokens");
  token
    .command("mint")
    .description("mint a root token signed by the organization key")
    .requiredOption("--agent <id>", "the agent the token is for")
    .requiredOption("--scopes <list>", "comma-separated permission patterns, e.g. flights:*,hotels:search", list)
    .option("--ttl <duration>", "lifetime", "1h")
    .option("--max-amount <money>", "cap per operation in minor units, e.g. 50000EUR", parseMoney)
    .option("--tools <list>", "allowed tools (globs)", list)
    .option("--depth <n>", "delegation depth", (v) => Number(v))
    .action(async (opts: { agent: string; scopes: string[]; ttl: string; maxAmount?: { amount: number; currency: string }; tools?: string[]; depth?: number }) => {
      await withWarden(program, (warden) => console.log(warden.tokens.mint({ agentId: opts.agent, scopes: opts.scopes, ttl: opts.ttl, maxAmount: opts.maxAmount, tools: opts.tools, depth: opts.depth, issuer: program.opts<GlobalOptions>().actor })));
    });
  token
    .command("attenuate <token>")
    .description("append a narrower block (offline)")
    .option("--audience <id>", "the agent the narrower token is for")
    .option("--scopes <list>", "narrower scopes", list)
    .option("--ttl <duration>", "shorter lifetime")
    .option("--max-amount <money>", "lower cap", parseMoney)
    .option("--tools <list>", "fewer tools", list)
    .option("--depth <n>", "less depth", (v) => Number(v))
    .option("--seal", "seal the result so it cannot be attenuated again", false)
    .action(async (value: string, opts: { audience?: string; scopes?: string[]; ttl?: string; maxAmount?: { amount: number; currency: string }; tools?: string[]; depth?: number; seal: boolean }) => {
      await withWarden(program, (warden) => {
        const child = warden.tokens.attenuate(value, { audience: opts.audience, scopes: opts.scopes, ttl: opts.ttl, maxAmount: opts.maxAmount, tools: opts.tools, depth: opts.depth });
        console.log(opts.seal ? warden.tokens.seal(child) : child);
      });
    });
  token
    .command("inspect <token>")
    .description("decode a token without verifying it")
    .action(async (value: string) => {
      await withWarden(program, (warden) => console.log(JSON.stringify(warden.tokens.inspect(value), null, 2)));
    });
  token
    .command("verify <token>")
    .description("verify a token against the organization key, revocations and halts")
    .option("--audience <id>", "the agent presenting it")
    .action(async (value: string, opts: { audience?: string }) => {
      await withWarden(program, (warden) => {
        const verified = warden.tokens.verify(value, { audience: opts.audience });
        print(program, verified, () => `valid: agent=${verified.authority.agentId} scopes=${verified.authority.scopes.join(",")}${verified.authority.maxAmount ? ` max=${verified.authority.maxAmount.amount}${verified.authority.maxAmount.currency}` : ""}${verified.authority.tools ? ` tools=${verified.authority.tools.join(",")}` : ""} depth=${verified.authority.depth} expires=${new Date(verified.expiresAt).toISOString()}${verified.sealed ? " sealed" : ""}`);
      });
    });
  token
    .command("revoke <id>")
    .description("revoke a token (and everything derived from it) by id")
    .option("--reason <text>")
    .action(async (id: string, opts: { reason?: string }) => {
      await withWarden(program, (warden) => {
        warden.tokens.revoke(id, { reason: opts.reason, actor: program.opts<GlobalOptions>().actor });
        console.log(`revoked ${id}`);
      });
    });
  token
    .command("jwk")
    .description("print the organization's public key as a JWK")
    .action(async () => {
      await withWarden(program, (warden) => console.log(JSON.stringify(warden.tokens.publicJwk(), null, 2)));
    });

  registerMcpGatewayCommand(program);
  registerMcpPinsCommand(program.command("mcp").description("what the MCP gateway keeps in the store"), {
    withWarden: (fn) => withWarden(program, fn, { existing: true }),
    print: (value, text) => print(program, value, text),
    actor: () => program.opts<GlobalOptions>().actor,
  });
  registerHookCommand(program);
  registerServerCommands(program);
  registerEvidenceCommands(program);
  registerVerifyCommand(program);
  registerWitnessCommand(program);

  return program;
}

/** Runs the CLI; returns the exit code instead of exiting, so tests can call it. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  // Commands report a failure through process.exitCode; start clean and leave the caller's as it was.
  const callersExitCode = process.exitCode;
  process.exitCode = undefined;
  try {
    await program.parseAsync(argv, { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === "commander.helpDisplayed" || error.code === "commander.version" || error.code === "commander.help") return 0;
      if (error.code.startsWith("warden.")) console.error(`warden: ${error.message}`);
      return EXIT_USAGE;
    }
    if (WardenError.isInstance(error)) {
      console.error(error.message);
      return error.code === "token_invalid" || error.code === "ledger_integrity" ? EXIT_FAILURE : EXIT_USAGE;
    }
    console.error(error instanceof Error ? error.stack : String(error));
    return EXIT_FAILURE;
  } finally {
    process.exitCode = callersExitCode;
  }
}
