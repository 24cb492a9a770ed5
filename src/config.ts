import { z } from "zod";
import type { ApprovalRequestHandler } from "./approvals/approvals.js";
import { ConfigError } from "./errors.js";
import { durationSchema } from "./internal/duration.js";
import { builtOnFirstUse } from "./internal/once.js";
import type { WardenLogger } from "./logger.js";
import { CurrencyTableSchema } from "./money.js";
import type { PolicySetInput } from "./policy/schema.js";
import { RedactionOptionsSchema } from "./redaction/redact.js";
import { RemoteOptionsSchema } from "./remote/options.js";
import { WitnessConfigSchema } from "./ledger/witness-config.js";

const ControlPlaneUrlSchema = builtOnFirstUse(() => z.url({ protocol: /^https?$/ }));

// The defaults the schema fills in, shared with the plain reading of the options below.
const DEFAULT_ORGANIZATION = "default";
const DEFAULT_STORE = "./.warden/warden.db";
const DEFAULT_STORE_MAX_PENDING = 65_536;
const DEFAULT_APPROVAL_TIMEOUT = 15 * 60_000;
const DEFAULT_APPROVAL_POLL_INTERVAL = 100;
const DEFAULT_MAX_RECORDED_BYTES = 64 * 1024;
const defaultLedger = () => ({ checkpointEvery: 1000, checkpointInterval: 10_000, witnesses: [], witnessInterval: 10_000, countersign: false });
const defaultHalt = () => ({ pollInterval: 25, staleAfter: 5_000, whenUnknown: "block" as const });

/**
 * A field that `schema` parses only when the options give a value for it. zod builds every schema an
 * object holds when it builds the object; the options most clients leave out (the control plane,
 * redaction rules, exchange rates, ledger and halt tuning) cost nothing to leave out this way.
 */
function whenGiven<S extends z.ZodType>(schema: () => S): z.ZodType<z.output<S>, z.input<S>> {
  return z.custom<z.input<S>>().transform((value, ctx) => {
    const result = schema().safeParse(value, { jitless: true });
    if (result.success) return result.data as z.output<S>;
    for (const issue of result.error.issues) ctx.addIssue({ code: "custom", message: issue.message, path: issue.path });
    return z.NEVER;
  });
}

const ControlPlaneUrlsSchema = builtOnFirstUse(() => z.union([ControlPlaneUrlSchema, z.array(ControlPlaneUrlSchema).min(1, "at least one control plane URL")]));

const LedgerOptionsSchema = builtOnFirstUse(() =>
  z.strictObject({
    /** Sign a checkpoint after this many entries… */
    checkpointEvery: z.number().int().positive().default(1000),
    /** …or when this much time has passed since the last one. */
    checkpointInterval: durationSchema().default(10_000),
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
    witnessInterval: durationSchema().default(10_000),
    /** Remote mode: the control plane countersigns this client's checkpoints too (a witness out of this machine's reach). */
    countersign: z.boolean().default(false),
  }),
);

const HaltOptionsSchema = builtOnFirstUse(() =>
  z.strictObject({
    /** How often to look for halts made by other processes sharing the store. */
    pollInterval: durationSchema().default(25),
    /** If the halt state could not be read for this long, enforcement fails closed. */
    staleAfter: durationSchema().default(5_000),
    /** `block` (default, fail-closed) or `allow` when the halt state is unknown. */
    whenUnknown: z.enum(["block", "allow"]).default("block"),
  }),
);

const fn = <T>() => z.custom<T>((value) => typeof value === "function", "expected a function");

export const WardenOptionsSchema = builtOnFirstUse(() =>
  z.strictObject({
    /** The agent this client acts as. */
    agentId: z.string().min(1),
    /** A group the agent belongs to, so one halt can stop the group. */
    group: z.string().min(1).optional(),
    /** The tenant; one store can hold several. */
    organization: z.string().min(1).default(DEFAULT_ORGANIZATION),
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
    url: whenGiven(() => ControlPlaneUrlsSchema).optional(),
    /** API key for the control plane (`wdn_…`). */
    apiKey: z.string().min(1).optional(),
    /** Tuning of remote mode. */
    remote: whenGiven(() => RemoteOptionsSchema).optional(),
    /** SQLite file of the embedded store, or `:memory:`. */
    store: z.string().min(1).default(DEFAULT_STORE),
    /**
     * Who commits to a store file: `"worker"` (default), a thread that owns the write connection, so the
     * agent's event loop never waits on SQLite; `"inline"`, this thread, in the gaps between calls.
     */
    storeWriter: z.enum(["worker", "inline"]).default("worker"),
    /** Writes that may wait for the writer thread before governed calls wait for it to catch up (back-pressure). */
    storeMaxPending: z.number().int().positive().default(DEFAULT_STORE_MAX_PENDING),
    redaction: whenGiven(() => RedactionOptionsSchema).optional(),
    /** How long a tool call waits for a reviewer when the policy does not say. */
    approvalTimeout: whenGiven(durationSchema).default(DEFAULT_APPROVAL_TIMEOUT),
    /** How often a waiting call looks for a decision made by another process. */
    approvalPollInterval: whenGiven(durationSchema).default(DEFAULT_APPROVAL_POLL_INTERVAL),
    /** Routes approval requests to reviewers (chat, ticket); with it, no notice is printed when a call starts waiting. */
    onApprovalRequest: fn<ApprovalRequestHandler>().optional(),
    /** The clock approvals read for expiry and escalation (ms since the epoch); a fake one in tests. */
    clock: fn<() => number>().optional(),
    /** Receives Warden's notices (a call waiting for a reviewer, no policy loaded). Default: one line on stderr per notice. */
    logger: z.custom<WardenLogger>((value) => typeof value === "object" && value !== null && typeof (value as WardenLogger).warn === "function", "expected an object with a warn(message) method").optional(),
    /** Receives telemetry and listener failures (which never reach the agent). Default: one warning per kind. */
    onError: fn<(error: unknown) => void>().optional(),
    /** The most one recorded value (a call's input, output or error, a run's metadata) takes, in bytes of JSON; larger ones are cut with a marker giving the original size. */
    maxRecordedBytes: z.number().int().min(1024).default(DEFAULT_MAX_RECORDED_BYTES),
    /** Exchange rates for budgets and token caps: `{ USD: { EUR: "0.92" } }`. */
    currencies: whenGiven(() => CurrencyTableSchema).optional(),
    ledger: whenGiven(() => LedgerOptionsSchema).default(defaultLedger),
    halt: whenGiven(() => HaltOptionsSchema).default(defaultHalt),
    tokens: z
      .strictObject({
        /** Ed25519 private key (PEM) of the organization; default: generated into `<store dir>/keys/organization.pem`. */
        signingKey: z.string().optional(),
      })
      .default({}),
  }),
);

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
  const plain = plainOptions(options);
  if (plain !== undefined) return plain;
  // Parsed once per client: compiling zod's fast path for one parse costs more than the parse (a first call pays it).
  const result = WardenOptionsSchema.safeParse(options ?? {}, { jitless: true });
  if (result.success && result.data.url !== undefined && result.data.apiKey === undefined) throw new ConfigError("invalid options: apiKey: a control plane url needs an apiKey (or WARDEN_API_KEY)");
  if (result.success) return result.data;
  throw new ConfigError(`invalid options: ${result.error.issues.map((i) => `${i.path.join(".") || "options"}: ${i.message}`).join("; ")}`);
}

const PLAIN_STRINGS = ["group", "environment", "token", "apiKey"] as const;
const PLAIN_FUNCTIONS = ["onApprovalRequest", "clock", "onError"] as const;
const PLAIN_KEYS = new Set<string>(["agentId", "organization", "store", "storeWriter", "storeMaxPending", "maxRecordedBytes", "policies", "logger", ...PLAIN_STRINGS, ...PLAIN_FUNCTIONS]);

/**
 * The options most clients pass (who the agent is, its store, policies, a logger), read without zod:
 * building the options' schema is most of a first `new Warden()`. Only for values the schema would take
 * as they are; anything else (another option, a value it would refuse) returns undefined, and the schema
 * decides and words the error. A test holds the two readings equal.
 */
export function plainOptions(options: unknown): ResolvedOptions | undefined {
  if (typeof options !== "object" || options === null) return undefined;
  const prototype: unknown = Object.getPrototypeOf(options);
  if (prototype !== Object.prototype && prototype !== null) return undefined;
  const given = options as Record<string, unknown>;
  for (const key in given) if (!PLAIN_KEYS.has(key)) return undefined;
  const { agentId, organization = DEFAULT_ORGANIZATION, store = DEFAULT_STORE, storeWriter = "worker", storeMaxPending = DEFAULT_STORE_MAX_PENDING, maxRecordedBytes = DEFAULT_MAX_RECORDED_BYTES, policies, logger } = given;
  if (!nonEmpty(agentId) || !nonEmpty(organization) || !nonEmpty(store)) return undefined;
  if (storeWriter !== "worker" && storeWriter !== "inline") return undefined;
  if (!Number.isSafeInteger(storeMaxPending) || (storeMaxPending as number) <= 0) return undefined;
  if (!Number.isSafeInteger(maxRecordedBytes) || (maxRecordedBytes as number) < 1024) return undefined;
  if (policies !== undefined && !nonEmpty(policies) && (typeof policies !== "object" || policies === null)) return undefined;
  if (logger !== undefined && (typeof logger !== "object" || logger === null || typeof (logger as WardenLogger).warn !== "function")) return undefined;
  for (const key of PLAIN_STRINGS) if (given[key] !== undefined && !nonEmpty(given[key])) return undefined;
  for (const key of PLAIN_FUNCTIONS) if (given[key] !== undefined && typeof given[key] !== "function") return undefined;
  return {
    ...(given as Partial<ResolvedOptions>),
    agentId,
    organization,
    store,
    storeWriter,
    storeMaxPending: storeMaxPending as number,
    maxRecordedBytes: maxRecordedBytes as number,
    approvalTimeout: DEFAULT_APPROVAL_TIMEOUT,
    approvalPollInterval: DEFAULT_APPROVAL_POLL_INTERVAL,
    ledger: defaultLedger(),
    halt: defaultHalt(),
    tokens: {},
  };
}

const nonEmpty = (value: unknown): value is string => typeof value === "string" && value.length > 0;

export const EnvSchema = builtOnFirstUse(() =>
  z.object({
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
  }),
);

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
