import { z } from "zod";
import type { ApprovalRequestHandler } from "./approvals/approvals.js";
import { ConfigError } from "./errors.js";
import { DurationSchema } from "./internal/duration.js";
import type { WardenLogger } from "./logger.js";
import { CurrencyTableSchema } from "./money.js";
import type { PolicySetInput } from "./policy/schema.js";
import { RedactionOptionsSchema } from "./redaction/redact.js";
import { RemoteOptionsSchema } from "./remote/options.js";
import { WitnessConfigSchema } from "./ledger/witness-config.js";

const ControlPlaneUrlSchema = z.url({ protocol: /^https?$/ });

const fn = <T>() => z.custom<T>((value) => typeof value === "function", "expected a function");

export const WardenOptionsSchema = z.strictObject({
  /** The agent this client acts as. */
  agentId: z.string().min(1),
  /** A group the agent belongs to, so one halt can stop the group. */
  group: z.string().min(1).optional(),
  /** The tenant; one store can hold several. */
  organization: z.string().min(1).default("default"),
  /** Matched by policies' `environment` condition. */
  environment: z.string().min(1).optional(),
  /** A YAML/JSON policy file, or a policy set object. Omitted: record everything, allow everything. */
  policies: z.union([z.string().min(1), z.custom<PolicySetInput>((value) => typeof value === "object" && value !== null, "expected a file path or a policy set object")]).optional(),
  /** A delegation token this client acts under: its runs are checked against the token's scopes and tools. */
  token: z.string().min(1).optional(),
  /**
   * The control plane (`warden serve`). With it, decisions stay local on policies synced from the
   * server, approvals and halts go through it, and events are sent to it in the background.
   * Several URLs (replicas of one control plane, or one load balancer's URL): a request that cannot
   * reach one, or that it answers 502/503/504, goes to the next.
   */
  url: z.union([ControlPlaneUrlSchema, z.array(ControlPlaneUrlSchema).min(1, "at least one control plane URL")]).optional(),
  /** API key for the control plane (`wdn_…`). */
  apiKey: z.string().min(1).optional(),
  /** Tuning of remote mode. */
  remote: RemoteOptionsSchema.optional(),
  /** SQLite file of the embedded store, or `:memory:`. */
  store: z.string().min(1).default("./.warden/warden.db"),
  /**
   * Who commits to a store file: `"worker"` (default), a thread that owns the write connection, so the
   * agent's event loop never waits on SQLite; `"inline"`, this thread, in the gaps between calls.
   */
  storeWriter: z.enum(["worker", "inline"]).default("worker"),
  /** Writes that may wait for the writer thread before governed calls wait for it to catch up (back-pressure). */
  storeMaxPending: z.number().int().positive().default(65_536),
  redaction: RedactionOptionsSchema.optional(),
  /** How long a tool call waits for a reviewer when the policy does not say. */
  approvalTimeout: DurationSchema.default(15 * 60_000),
  /** How often a waiting call looks for a decision made by another process. */
  approvalPollInterval: DurationSchema.default(100),
  /** Routes approval requests to reviewers (chat, ticket); with it, no notice is printed when a call starts waiting. */
  onApprovalRequest: fn<ApprovalRequestHandler>().optional(),
  /** The clock approvals read for expiry and escalation (ms since the epoch); a fake one in tests. */
  clock: fn<() => number>().optional(),
  /** Receives Warden's notices (a call waiting for a reviewer, no policy loaded). Default: one line on stderr per notice. */
  logger: z.custom<WardenLogger>((value) => typeof value === "object" && value !== null && typeof (value as WardenLogger).warn === "function", "expected an object with a warn(message) method").optional(),
  /** Receives telemetry and listener failures (which never reach the agent). Default: one warning per kind. */
  onError: fn<(error: unknown) => void>().optional(),
  /** The most one recorded value (a call's input, output or error, a run's metadata) takes, in bytes of JSON; larger ones are cut with a marker giving the original size. */
  maxRecordedBytes: z.number().int().min(1024).default(64 * 1024),
  /** Exchange rates for budgets and token caps: `{ USD: { EUR: "0.92" } }`. */
  currencies: CurrencyTableSchema.optional(),
  ledger: z
    .strictObject({
      /** Sign a checkpoint after this many entries… */
      checkpointEvery: z.number().int().positive().default(1000),
      /** …or when this much time has passed since the last one. */
      checkpointInterval: DurationSchema.default(10_000),
      /**
       * Ed25519 private key for checkpoints: PEM, or the path of a PEM file (created if absent), best kept
       * outside the store's folder (env `WARDEN_LEDGER_KEY`). Default: generated into `<store dir>/keys/ledger.pem`.
       * Public keys of rotated-out keys are read from `retired/` beside the key file.
       */
      signingKey: z.string().optional(),
      /** Public keys this ledger's signing key took over from (key rotation), for keys given as PEM. */
      previousKeys: z.array(z.string()).max(64).optional(),
      /** Witnesses asked to cosign each new checkpoint (`warden witness` prints its key): a rewritten history then fails against their heads. */
      witnesses: z.array(WitnessConfigSchema).max(16).default([]),
      /** How often new checkpoints are sent to the witnesses. */
      witnessInterval: DurationSchema.default(10_000),
      /** Remote mode: the control plane countersigns this client's checkpoints too (a witness out of this machine's reach). */
      countersign: z.boolean().default(false),
    })
    .default({ checkpointEvery: 1000, checkpointInterval: 10_000, witnesses: [], witnessInterval: 10_000, countersign: false }),
  halt: z
    .strictObject({
      /** How often to look for halts made by other processes sharing the store. */
      pollInterval: DurationSchema.default(25),
      /** If the halt state could not be read for this long, enforcement fails closed. */
      staleAfter: DurationSchema.default(5_000),
      /** `block` (default, fail-closed) or `allow` when the halt state is unknown. */
      whenUnknown: z.enum(["block", "allow"]).default("block"),
    })
    .default({ pollInterval: 25, staleAfter: 5_000, whenUnknown: "block" }),
  tokens: z
    .strictObject({
      /** Ed25519 private key (PEM) of the organization; default: generated into `<store dir>/keys/organization.pem`. */
      signingKey: z.string().optional(),
    })
    .default({}),
});

/**
 * Options of `new Warden(options)`: who the agent is, which policies apply, where records go.
 * Only `agentId` is required.
 * @example
 * import { Warden, type WardenOptions } from "agent-warden";
 * const options: WardenOptions = { agentId: "billing-agent", policies: "./warden.yaml", environment: "production" };
 * const warden = new Warden(options);
 */
export type WardenOptions = z.input<typeof WardenOptionsSchema>;
export type ResolvedOptions = z.output<typeof WardenOptionsSchema>;

export function parseOptions(options: unknown): ResolvedOptions {
  // Parsed once per client: compiling zod's fast path for one parse costs more than the parse (a first call pays it).
  const result = WardenOptionsSchema.safeParse(options ?? {}, { jitless: true });
  if (result.success && result.data.url !== undefined && result.data.apiKey === undefined) throw new ConfigError("invalid options: apiKey: a control plane url needs an apiKey (or WARDEN_API_KEY)");
  if (result.success) return result.data;
  throw new ConfigError(`invalid options: ${result.error.issues.map((i) => `${i.path.join(".") || "options"}: ${i.message}`).join("; ")}`);
}

export const EnvSchema = z.object({
  WARDEN_AGENT_ID: z.string().min(1, "WARDEN_AGENT_ID is required"),
  WARDEN_POLICY_FILE: z.string().min(1).optional(),
  WARDEN_STORE: z.string().min(1).optional(),
  WARDEN_ENVIRONMENT: z.string().min(1).optional(),
  WARDEN_GROUP: z.string().min(1).optional(),
  WARDEN_ORGANIZATION: z.string().min(1).optional(),
  WARDEN_TOKEN: z.string().min(1).optional(),
  WARDEN_URL: z.string().min(1).optional(),
  WARDEN_API_KEY: z.string().min(1).optional(),
  WARDEN_LEDGER_KEY: z.string().min(1).optional(),
});

/** Reads `WARDEN_*` variables into options. */
export function optionsFromEnv(env: NodeJS.ProcessEnv): WardenOptions {
  const result = EnvSchema.safeParse(env, { jitless: true });
  if (!result.success) throw new ConfigError(`invalid environment: ${result.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  const e = result.data;
  return {
    agentId: e.WARDEN_AGENT_ID,
    ...(e.WARDEN_POLICY_FILE && { policies: e.WARDEN_POLICY_FILE }),
    ...(e.WARDEN_STORE && { store: e.WARDEN_STORE }),
    ...(e.WARDEN_ENVIRONMENT && { environment: e.WARDEN_ENVIRONMENT }),
    ...(e.WARDEN_GROUP && { group: e.WARDEN_GROUP }),
    ...(e.WARDEN_ORGANIZATION && { organization: e.WARDEN_ORGANIZATION }),
    ...(e.WARDEN_TOKEN && { token: e.WARDEN_TOKEN }),
    // Several replicas: comma-separated.
    ...(e.WARDEN_URL && { url: e.WARDEN_URL.includes(",") ? e.WARDEN_URL.split(",").map((url) => url.trim()).filter((url) => url !== "") : e.WARDEN_URL }),
    ...(e.WARDEN_API_KEY && { apiKey: e.WARDEN_API_KEY }),
    ...(e.WARDEN_LEDGER_KEY && { ledger: { signingKey: e.WARDEN_LEDGER_KEY } }),
  };
}
