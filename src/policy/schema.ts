import { z } from "zod";
import { ActionType, PolicyAction, RiskSeverity, values } from "../enums.js";
import { DurationSchema } from "../internal/duration.js";
import { CurrencyTableSchema, MoneySchema } from "../money.js";

const Scalar = z.union([z.string(), z.number(), z.boolean(), z.null()]);

/** Operators over one value; several in one object are AND-ed. */
export const OperatorsSchema = z
  .strictObject({
    eq: Scalar,
    ne: Scalar,
    in: z.array(Scalar),
    not_in: z.array(Scalar),
    contains: Scalar,
    matches: z.string().refine(isRegex, "not a valid regular expression"),
    exists: z.boolean(),
    gt: z.number(),
    gte: z.number(),
    lt: z.number(),
    lte: z.number(),
  })
  .partial()
  .refine((o) => Object.keys(o).length > 0, "an operator object needs at least one of eq ne in not_in contains matches exists gt gte lt lte");
export type Operators = z.infer<typeof OperatorsSchema>;

/** A scalar means `eq`. */
export const ConditionSchema = z.union([Scalar, OperatorsSchema]);
export type Condition = z.infer<typeof ConditionSchema>;

const Globs = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);
const ActionTypes = z.union([z.enum(values(ActionType)), z.array(z.enum(values(ActionType))).min(1)]);

/** Conditions a call must all meet. Keys other than tool/action/agent/environment are `args.<path>` or `metadata.<path>`. */
export interface When {
  tool?: string | string[] | undefined;
  action?: ActionType | ActionType[] | undefined;
  agent?: string | string[] | undefined;
  environment?: string | string[] | undefined;
  [condition: `args.${string}` | `metadata.${string}`]: Condition;
}

// Typed by hand: a zod catchall's index signature would also have to admit the list forms of tool/action/agent/environment.
export const WhenSchema: z.ZodType<When, When> = z
  .object({ tool: Globs, action: ActionTypes, agent: Globs, environment: Globs })
  .partial()
  .catchall(ConditionSchema)
  .superRefine((when, ctx) => {
    for (const key of Object.keys(when)) {
      if (key === "tool" || key === "action" || key === "agent" || key === "environment") continue;
      if (!/^(args|metadata)\.[^.].*$/.test(key)) {
        ctx.addIssue({ code: "custom", path: [key], message: `unknown condition "${key}" (use tool, action, agent, environment, args.<path> or metadata.<path>)` });
      }
    }
  }) as z.ZodType<When, When>;

export const PolicySchema = z.strictObject({
  id: z.string().min(1),
  description: z.string().optional(),
  when: WhenSchema.default({}),
  action: z.enum(values(PolicyAction)),
  severity: z.enum(values(RiskSeverity)).optional(),
  /** `shadow`: evaluated and recorded, never enforced, for safe roll-out. */
  mode: z.enum(["enforce", "shadow"]).default("enforce"),
  /** Shown to the agent and the reviewer; defaults to the description. */
  reason: z.string().optional(),
  approval: z.strictObject({ timeout: DurationSchema.optional() }).optional(),
  enabled: z.boolean().default(true),
});
export type Policy = z.infer<typeof PolicySchema>;
export type PolicyInput = z.input<typeof PolicySchema>;

/** Counts calls per window; over `max`, the call gets `exceed` (block by default). */
export const RateLimitSchema = z.strictObject({
  id: z.string().min(1),
  tool: Globs.optional(),
  action: ActionTypes.optional(),
  max: z.number().int().positive(),
  per: DurationSchema,
  scope: z.enum(["agent", "run", "global"]).default("agent"),
  exceed: z.enum(["block", "require_approval", "warn"]).default("block"),
});
export type RateLimit = z.infer<typeof RateLimitSchema>;

/** Spend (integer minor units) or LLM tokens per run. */
export const BudgetSchema = z
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
  .refine((b) => (b.spend === undefined) !== (b.tokens === undefined), "a budget sets exactly one of spend or tokens");
export type Budget = z.infer<typeof BudgetSchema>;

/** A policy file (`warden.yaml`) or the same object built in code. */
export const PolicySetSchema = z.strictObject({
  version: z.literal(1).default(1),
  /** The action when no enforced policy matches: `allow` for adoption, `block` for deny-by-default. */
  default: z.enum(values(PolicyAction)).default("allow"),
  policies: z.array(PolicySchema).default([]),
  limits: z.array(RateLimitSchema).default([]),
  budgets: z.array(BudgetSchema).default([]),
  currencies: CurrencyTableSchema.optional(),
});
export type PolicySet = z.infer<typeof PolicySetSchema>;
export type PolicySetInput = z.input<typeof PolicySetSchema>;

function isRegex(source: string): boolean {
  try {
    new RegExp(source);
    return true;
  } catch {
    return false;
  }
}
