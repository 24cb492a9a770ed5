import { z } from "zod";
import { ActionType, PolicyAction, RiskSeverity, values } from "../enums.js";
import { durationSchema } from "../internal/duration.js";
import { builtOnFirstUse } from "../internal/once.js";
import { CurrencyTableSchema, MoneySchema } from "../money.js";
import { regexProblem } from "./pattern.js";

const Scalar = builtOnFirstUse(() => z.union([z.string(), z.number(), z.boolean(), z.null()]));

/** Operators over one value; several in one object are AND-ed. */
export const OperatorsSchema = builtOnFirstUse(() =>
  z
    .strictObject({
      eq: Scalar,
      ne: Scalar,
      in: z.array(Scalar),
      not_in: z.array(Scalar),
      contains: Scalar,
      matches: z.string().superRefine((source, ctx) => {
        const problem = regexProblem(source);
        if (problem !== undefined) ctx.addIssue({ code: "custom", message: `not a linear-time regular expression (RE2 syntax: no backreferences, no lookaround): ${problem}` });
      }),
      exists: z.boolean(),
      gt: z.number(),
      gte: z.number(),
      lt: z.number(),
      lte: z.number(),
    })
    .partial()
    .refine((o) => Object.keys(o).length > 0, "an operator object needs at least one of eq ne in not_in contains matches exists gt gte lt lte"),
);
export type Operators = z.infer<typeof OperatorsSchema>;

/** A scalar means `eq`. */
export const ConditionSchema = builtOnFirstUse(() => z.union([Scalar, OperatorsSchema]));
/**
 * A test on one value of a call: a scalar means `eq`; an operator object's operators are AND-ed.
 * @example
 * import type { Condition } from "agent-warden";
 * const largeAmount: Condition = { gte: 50000 };
 */
export type Condition = z.infer<typeof ConditionSchema>;

const Globs = builtOnFirstUse(() => z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]));
const ActionTypes = builtOnFirstUse(() => z.union([z.enum(values(ActionType)), z.array(z.enum(values(ActionType))).min(1)]));

const fieldForms = (glob: string) => `${glob}, a list of them, or operators such as { in: [...] } (eq ne in not_in contains matches exists)`;
/** `tool`, `agent`, `environment`: a glob, a list of globs, or the operators `args.*` takes (tested on the name as a literal string). */
const NameCondition = builtOnFirstUse(() =>
  z.union([Globs, OperatorsSchema], { error: (issue) => (issue.code === "invalid_union" ? `expected ${fieldForms('a glob such as "payments.*"')}` : undefined) }),
);
/** `action`: an ActionType, a list of them, or operators. */
const ActionCondition = builtOnFirstUse(() =>
  z.union([ActionTypes, OperatorsSchema], { error: (issue) => (issue.code === "invalid_union" ? `expected ${fieldForms(`an action type (${values(ActionType).join(" ")})`)}` : undefined) }),
);

/**
 * Which calls a policy applies to: conditions a call must all meet. Keys other than
 * tool/action/agent/environment are `args.<path>` or `metadata.<path>`.
 * @example
 * import type { When } from "agent-warden";
 * const largeRefunds: When = { tool: "payments.*", "args.amount": { gt: 10000 } };
 */
export interface When {
  /** A glob (`payments.*`), a list of globs, or operators (`{ in: [...] }`, `{ matches: "^pay" }`). */
  tool?: string | string[] | Operators | undefined;
  action?: ActionType | ActionType[] | Operators | undefined;
  /** Also binds the agent's sub-identities (`intern/helper` is bound by every rule for `intern`). */
  agent?: string | string[] | Operators | undefined;
  environment?: string | string[] | Operators | undefined;
  [condition: `args.${string}` | `metadata.${string}`]: Condition;
}

// Typed by hand: a zod catchall's index signature would also have to admit the list forms of tool/action/agent/environment.
export const WhenSchema: z.ZodType<When, When> = builtOnFirstUse(() =>
  z
    .object({ tool: NameCondition, action: ActionCondition, agent: NameCondition, environment: NameCondition })
    .partial()
    .catchall(ConditionSchema)
    .superRefine((when, ctx) => {
      for (const key of Object.keys(when)) {
        if (key === "tool" || key === "action" || key === "agent" || key === "environment") continue;
        if (!/^(args|metadata)\.[^.].*$/.test(key)) {
          ctx.addIssue({ code: "custom", path: [key], message: `unknown condition "${key}" (use tool, action, agent, environment, args.<path> or metadata.<path>)` });
        }
      }
    }) as z.ZodType<When, When>,
);

export const PolicySchema = builtOnFirstUse(() =>
  z.strictObject({
    id: z.string().min(1),
    description: z.string().optional(),
    when: WhenSchema.default({}),
    action: z.enum(values(PolicyAction)),
    severity: z.enum(values(RiskSeverity)).optional(),
    /** `shadow`: evaluated and recorded, never enforced, for safe roll-out. */
    mode: z.enum(["enforce", "shadow"]).default("enforce"),
    /** Shown to the agent and the reviewer; defaults to the description. */
    reason: z.string().optional(),
    /**
     * Who must answer and how long they have: `approvers` distinct reviewers (default 1), each one of
     * `from` (identities, or `group:<name>`; default: anyone but the requesting agent), and once
     * `escalate.after` passes unanswered, also one of `escalate.to`.
     */
    approval: z
      .strictObject({
        timeout: durationSchema().optional(),
        approvers: z.number().int().min(1).max(20).optional(),
        from: z.array(z.string().min(1).max(256)).min(1).max(100).optional(),
        escalate: z.strictObject({ after: durationSchema(), to: z.array(z.string().min(1).max(256)).min(1).max(100) }).optional(),
        /** Where this policy's requests go: webhook ids of the set's `channels`, or `slack`. Default: every channel. */
        notify: z.array(z.string().min(1).max(64)).min(1).max(20).optional(),
      })
      .optional(),
    /**
     * A scope the caller must hold to call the tools this policy names, where a surface authenticates its
     * callers (the MCP gateway over HTTP: an OAuth scope of the bearer JWT, or a permission of a delegation
     * token). Checked before the call, whatever the policy's other conditions and action.
     */
    scope: z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]{1,256}$/, "a scope is one OAuth scope token: printable, no spaces, quotes or backslashes").optional(),
    enabled: z.boolean().default(true),
  }),
);
/**
 * One policy as validated, defaults filled in (`mode`, `enabled`, `when`): what `warden.policies` holds.
 * @example
 * import type { Policy } from "agent-warden";
 * const shadowed = warden.policies.policies.filter((policy: Policy) => policy.mode === "shadow");
 */
export type Policy = z.infer<typeof PolicySchema>;
/**
 * One policy as written in a file or in code, before defaults are applied.
 * @example
 * import type { PolicyInput } from "agent-warden";
 * const deploys: PolicyInput = { id: "prod-deploys", when: { action: "deploy", environment: "production" }, action: "require_approval" };
 */
export type PolicyInput = z.input<typeof PolicySchema>;

/** Counts calls per window; over `max`, the call gets `exceed` (block by default). */
export const RateLimitSchema = builtOnFirstUse(() =>
  z.strictObject({
    id: z.string().min(1),
    tool: Globs.optional(),
    action: ActionTypes.optional(),
    max: z.number().int().positive(),
    per: durationSchema(),
    scope: z.enum(["agent", "run", "global"]).default("agent"),
    exceed: z.enum(["block", "require_approval", "warn"]).default("block"),
  }),
);
/**
 * A rate limit as validated (`per` in ms), to keep a looping agent from repeating a call without bound.
 * @example
 * import type { RateLimit } from "agent-warden";
 * const limits: RateLimit[] = warden.policies.limits;
 */
export type RateLimit = z.infer<typeof RateLimitSchema>;

/** Spend (integer minor units) or LLM tokens per run. */
export const BudgetSchema = builtOnFirstUse(() =>
  z
    .strictObject({
      id: z.string().min(1),
      tool: Globs.optional(),
      spend: z
        .strictObject({
          max: MoneySchema,
          /** Where the call's amount and currency are read from. */
          amount: z.string().default("args.amount"),
          currency: z.string().default("args.currency"),
        })
        .optional(),
      tokens: z.number().int().positive().optional(),
      exceed: z.enum(["block", "require_approval", "warn"]).default("block"),
    })
    .refine((b) => (b.spend === undefined) !== (b.tokens === undefined), "a budget sets exactly one of spend or tokens"),
);
/**
 * A spend or LLM-token budget per run as validated, to cap what one run can cost.
 * @example
 * import type { Budget } from "agent-warden";
 * const spendCaps = warden.policies.budgets.filter((budget: Budget) => budget.spend !== undefined);
 */
export type Budget = z.infer<typeof BudgetSchema>;

/** A secret written in a policy file: a reference to the environment, never the secret itself. */
const EnvSecret = builtOnFirstUse(() =>
  z
    .string()
    .regex(/^\$\{WARDEN_[A-Z0-9_]{1,64}\}$/, "a secret in a policy file is an environment reference such as ${WARDEN_WEBHOOK_SECRET} (names start with WARDEN_), never the secret itself"),
);
const ChannelEvents = builtOnFirstUse(() => z.array(z.enum(["approval.requested", "approval.decided"])).min(1));

/**
 * Approval channels declared in a policy file: signed webhooks (each with an `id` that policies'
 * `approval.notify` names), Slack, one-time links. Secrets are `${WARDEN_…}` environment references,
 * read where the channels run (the embedded client, or the control plane the set is pushed to).
 * @example
 * import { PolicyChannelsSchema } from "agent-warden";
 * PolicyChannelsSchema.parse({ webhooks: [{ id: "ops", url: "https://hooks.example.com/warden", secret: "${WARDEN_OPS_HOOK_SECRET}" }] });
 */
export const PolicyChannelsSchema = builtOnFirstUse(() =>
  z.strictObject({
    webhooks: z
      .array(
        z.strictObject({
          id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, "a webhook id: letters, digits, . _ -"),
          url: z.url({ protocol: /^https?$/, error: "a webhook url is http(s)://…" }),
          secret: EnvSecret,
          events: ChannelEvents.optional(),
        }),
      )
      .max(20)
      .optional(),
    slack: z.strictObject({ token: EnvSecret, channel: z.string().min(1), signingSecret: EnvSecret, apiUrl: z.url().optional() }).optional(),
    links: z.strictObject({ secret: EnvSecret, baseUrl: z.url(), ttl: durationSchema().optional() }).optional(),
    retry: z
      .strictObject({
        attempts: z.number().int().min(1).max(50).optional(),
        initialDelay: durationSchema().optional(),
        maxDelay: durationSchema().optional(),
        timeout: durationSchema().optional(),
      })
      .optional(),
  }),
);
/**
 * The `channels:` section of a policy file, as validated.
 * @example
 * import type { PolicyChannels } from "agent-warden";
 * const hookIds = (channels: PolicyChannels) => (channels.webhooks ?? []).map((hook) => hook.id);
 */
export type PolicyChannels = z.infer<typeof PolicyChannelsSchema>;

/**
 * The zod schema of a policy file (`warden.yaml`) or the same object built in code, for validating
 * a set without throwing or composing it into a schema of your own.
 * @example
 * import { PolicySetSchema } from "agent-warden";
 * const result = PolicySetSchema.safeParse(JSON.parse(text));
 * if (!result.success) console.error(result.error.issues);
 */
export const PolicySetSchema = builtOnFirstUse(() =>
  z.strictObject({
    version: z.literal(1).default(1),
    /** The action when no enforced policy matches: `allow` for adoption, `block` for deny-by-default. */
    default: z.enum(values(PolicyAction)).default("allow"),
    policies: z.array(PolicySchema).default([]),
    limits: z.array(RateLimitSchema).default([]),
    budgets: z.array(BudgetSchema).default([]),
    currencies: CurrencyTableSchema.optional(),
    /** Where approval requests are announced (webhooks, Slack, one-time links); secrets by `${WARDEN_…}` reference. */
    channels: PolicyChannelsSchema.optional(),
  }),
);
/**
 * A policy set as validated, every default filled in: what the loaders return and `warden.policies` holds.
 * @example
 * import { loadPolicyFile, type PolicySet } from "agent-warden";
 * const set: PolicySet = loadPolicyFile("./warden.yaml");
 */
export type PolicySet = z.infer<typeof PolicySetSchema>;
/**
 * A policy set as written in code, defaults optional: what `new Warden({ policies })` and `setPolicies` accept.
 * @example
 * import type { PolicySetInput } from "agent-warden";
 * const policies: PolicySetInput = { default: "allow", policies: [{ id: "no-secrets", when: { action: "secret_access" }, action: "block" }] };
 * warden.setPolicies(policies);
 */
export type PolicySetInput = z.input<typeof PolicySetSchema>;
