// Request shapes of the HTTP API. Every body and query goes through one of these; a request that
// does not fit gets 400 with every problem listed, before anything is written.
import { z } from "zod";
import { ActionType, ApprovalStatus, RunStatus, ToolCallStatus, values } from "../enums.js";
import { MoneySchema } from "../money.js";
import { HttpError, type Problem } from "./errors.js";
import { ROLES } from "./store.js";
import { wireEvents } from "../wire/event.js";
import { withinDepth } from "../wire/limits.js";

const DAY = 86_400_000;
const { EventSchema, IdSchema, IngestEnvelopeSchema, IngestSchema, JsonObjectSchema, JsonSchema } = wireEvents();

// The event wire's limits and shapes live in src/wire, shared with the remote client.
export { withinDepth, IdSchema, EventSchema, IngestSchema, IngestEnvelopeSchema };
const Json = JsonSchema;
const JsonObject = JsonObjectSchema;
const Name = z.string().min(1).max(256);
const Reason = z.string().max(4000);
const Timestamp = z.int().min(0).max(8.64e15);

const AgentContextSchema = z.strictObject({
  goal: z.string().max(10_000).optional(),
  reasoning: z.string().max(10_000).optional(),
  conversationId: z.string().max(256).optional(),
  promptSummary: z.string().max(10_000).optional(),
});

export const AgentRegistrationSchema = z.strictObject({ group: z.string().min(1).max(256).nullable().optional() });

export const CheckSchema = z.strictObject({
  tool: Name,
  args: Json.optional(),
  agentId: IdSchema.optional(),
  group: Name.optional(),
  runId: IdSchema.optional(),
  actionHint: z.enum(values(ActionType)).optional(),
  environment: Name.optional(),
  metadata: JsonObject.optional(),
});

// ── queries ─────────────────────────────────────────────────────────────────────────────────

const paging = {
  limit: z.coerce.number().int().min(1).max(500).default(50),
  offset: z.coerce.number().int().min(0).max(1_000_000_000).default(0),
};

export const RunQuerySchema = z.strictObject({
  agentId: IdSchema.optional(),
  status: z.enum(values(RunStatus)).optional(),
  traceId: IdSchema.optional(),
  parentRunId: IdSchema.optional(),
  ...paging,
});

export const RunTreeQuerySchema = z.strictObject({ depth: z.coerce.number().int().min(0).max(10).default(5) });

export const ToolCallQuerySchema = z.strictObject({
  agentId: IdSchema.optional(),
  status: z.enum(values(ToolCallStatus)).optional(),
  runId: IdSchema.optional(),
  traceId: IdSchema.optional(),
  toolName: Name.optional(),
  ...paging,
});

export const ApprovalQuerySchema = z.strictObject({
  status: z.enum(values(ApprovalStatus)).optional(),
  runId: IdSchema.optional(),
  agentId: IdSchema.optional(),
  ...paging,
});

export const PageQuerySchema = z.strictObject(paging);
export const EmptyQuerySchema = z.strictObject({});
export const HaltQuerySchema = z.strictObject({ include: z.enum(["active", "all"]).default("active") });
export const LedgerExportQuerySchema = z.strictObject({
  afterSeq: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(1_000_000).default(100_000),
});
/** A stream event id (`Last-Event-ID`): the sequence number of a durable message. */
export const STREAM_EVENT_ID = /^\d{1,15}$/;
export const StreamQuerySchema = z.strictObject({
  topics: z
    .string()
    .max(200)
    .transform((text) => text.split(",").map((t) => t.trim()).filter(Boolean))
    .pipe(z.array(z.enum(["approvals", "halts", "policies", "runs"])).min(1))
    .optional(),
  lastEventId: z.string().regex(STREAM_EVENT_ID, "a stream event id").optional(),
});

export const PolicyVersionParamSchema = z.coerce.number().int().min(0).max(1_000_000_000);

// ── policies ────────────────────────────────────────────────────────────────────────────────

/** A policy set as an object, or as YAML/JSON text (kept for editing). */
export const PolicyDocumentSchema = z.union([z.string().min(1).max(512 * 1024), JsonObject]);
export const PolicyPutSchema = z.strictObject({ policies: PolicyDocumentSchema, comment: z.string().max(1000).optional() });
export const PolicyValidateSchema = z.strictObject({ policies: PolicyDocumentSchema });
export const PolicyRollbackSchema = z.strictObject({ version: z.int().min(0).max(1_000_000_000), comment: z.string().max(1000).optional() });

// ── approvals ───────────────────────────────────────────────────────────────────────────────

export const ApprovalCreateSchema = z.strictObject({
  approvalId: z.string().regex(/^apr_[A-Za-z0-9]{8,64}$/, "an approval id such as apr_…").optional(),
  eventId: IdSchema.optional(),
  toolCallId: IdSchema,
  runId: IdSchema,
  agentId: IdSchema,
  toolName: Name,
  payload: Json.optional(),
  agentContext: AgentContextSchema.optional(),
  policyId: Name.optional(),
  reason: Reason.optional(),
  timeoutMs: z.int().min(0).max(30 * DAY).optional(),
  expiresAt: Timestamp.optional(),
  /** The rule of the agent's own policy (`approval.approvers`, `from`, `escalate`); the control plane's policy set takes precedence. */
  rule: z
    .strictObject({
      approvers: z.int().min(1).max(20).optional(),
      from: z.array(Name).min(1).max(100).optional(),
      escalate: z.strictObject({ afterMs: z.int().min(0).max(30 * DAY), to: z.array(Name).min(1).max(100) }).optional(),
    })
    .optional(),
});

export const ApprovalDecisionSchema = z.strictObject({ reviewer: Name.optional(), reason: Reason.optional() }).default({});

// ── halts ───────────────────────────────────────────────────────────────────────────────────

const oneTarget = (target: { agentId?: string | undefined; group?: string | undefined; runId?: string | undefined }) =>
  [target.agentId, target.group, target.runId].filter((t) => t !== undefined).length <= 1;
const targetMessage = { message: "give at most one of agentId, group, runId (none: the whole organization)" };

export const HaltSchema = z
  .strictObject({
    agentId: IdSchema.optional(),
    group: Name.optional(),
    runId: IdSchema.optional(),
    reason: z.string().trim().min(1, "a halt needs a reason").max(4000),
    actor: Name.optional(),
    haltId: z.string().regex(/^halt_[A-Za-z0-9]{8,64}$/, "a halt id such as halt_…").optional(),
    eventId: IdSchema.optional(),
  })
  .refine(oneTarget, targetMessage);

export const ResumeSchema = z
  .strictObject({
    agentId: IdSchema.optional(),
    group: Name.optional(),
    runId: IdSchema.optional(),
    reason: Reason.optional(),
    actor: Name.optional(),
    eventId: IdSchema.optional(),
  })
  .refine(oneTarget, targetMessage)
  .default({});

// ── tokens and keys ─────────────────────────────────────────────────────────────────────────

const Pattern = z.string().min(1).max(256).regex(/^\S+$/, "a pattern without spaces");
export const MintSchema = z.strictObject({
  agentId: IdSchema,
  scopes: z.array(Pattern).min(1).max(256),
  ttl: z.union([z.int().positive().max(366 * DAY), z.string().min(1).max(32)]),
  maxAmount: MoneySchema.optional(),
  tools: z.array(Pattern).max(256).optional(),
  depth: z.int().min(0).max(16).optional(),
  runId: IdSchema.optional(),
  traceId: IdSchema.optional(),
});
/** `GET /v1/tokens/revoked`: revocations at or after `since` (ms); `afterTokenId` continues a page cut within one millisecond. */
export const RevokedTokensQuerySchema = z.strictObject({
  since: z.coerce.number().int().min(0).max(8.64e15).default(0),
  afterTokenId: IdSchema.optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(1000),
});
export const RevokeTokenSchema = z.strictObject({ tokenId: IdSchema, reason: Reason.optional() });
export const VerifyTokenSchema = z.strictObject({ token: z.string().min(1).max(64 * 1024), audience: IdSchema.optional() });
export const KeyCreateSchema = z.strictObject({
  role: z.enum(ROLES),
  /** The holder's identity: what a policy's `approval.from` names, and who a decision is recorded as. */
  name: z.string().min(1).max(128).optional(),
  agentId: IdSchema.optional(),
  /** For `group:<name>` in a policy's `approval.from`. */
  groups: z.array(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/, "a group name: letters, digits, . _ @ -")).max(50).optional(),
});

// ── parsing ─────────────────────────────────────────────────────────────────────────────────

/** Parses `value` or throws 400 with every problem, each with a dotted path (`events.3.id`). */
export function parse<S extends z.ZodType>(schema: S, value: unknown, where: "body" | "query" | "path" = "body"): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const problems: Problem[] = result.error.issues.slice(0, 100).map((issue) => ({ path: issue.path.map(String).join(".") || where, message: issue.message }));
  throw new HttpError(400, "invalid_request", `invalid ${where}: ${problems.map((p) => `${p.path}: ${p.message}`).slice(0, 3).join("; ")}${problems.length > 3 ? "; …" : ""}`, { problems });
}
