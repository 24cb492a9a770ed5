// What the remote client reads from the control plane (answers and stream messages) and keeps in
// its cache, as zod schemas: nothing it acts on is taken on trust. The wire contract
// (test/fixtures/wire-contract.json) pins these shapes from the server's side.
import type { Jwk } from "../tokens/jwk.js";
import { z } from "zod";
import { once } from "../internal/once.js";
import { ApprovalStatus, values } from "../enums.js";
import type { HaltRecord } from "../halt/halt.js";
import type { ApprovalRecord } from "../records.js";
import { wireEvents } from "./event.js";

/** The schemas, built on first use: a process that never talks to a control plane never builds them. */
export const wireResponses = once(() => {
  const { IdSchema } = wireEvents();
  const Time = z.number().finite().min(0);
  /** A field the server leaves out (or sends as null) when it has no value. */
  const absent = <T extends z.ZodType>(schema: T) =>
    schema
      .nullish()
      .transform((value) => value ?? undefined);

  /** `GET /v1/policies/current`, the `policy.updated` stream message, and the policy cache's core. */
  const PolicyVersionSchema = z.object({
    version: z.int().min(0),
    etag: z.string().min(1).max(256),
    policies: z.record(z.string(), z.unknown()),
  });

  /** One halt, as `GET /v1/halts` lists it and the stream reports it. */
  const HaltRecordSchema = z
    .object({
      haltId: z.string().min(1).max(256),
      scope: z.enum(["organization", "agent", "group", "run"]),
      target: absent(z.string()),
      reason: z.string(),
      actor: absent(z.string()),
      createdAt: Time,
      liftedAt: absent(Time),
    })
    .transform((halt): HaltRecord => halt);

  const HaltListSchema = z.object({ halts: z.array(HaltRecordSchema) });

  /** One approval request, as `GET /v1/approvals/:id` answers it and the stream reports it. */
  const ApprovalRecordSchema = z
    .object({
      approvalId: z.string().min(1).max(256),
      toolCallId: IdSchema,
      runId: IdSchema,
      agentId: IdSchema,
      toolName: z.string(),
      status: z.enum(values(ApprovalStatus)),
      payload: z.unknown(),
      agentContext: absent(z.object({ goal: z.string().optional(), reasoning: z.string().optional(), conversationId: z.string().optional(), promptSummary: z.string().optional() })),
      policyId: absent(z.string()),
      reason: absent(z.string()),
      reviewer: absent(z.string()),
      decisionReason: absent(z.string()),
      createdAt: Time,
      expiresAt: Time,
      decidedAt: absent(Time),
    })
    .transform((record) => record as ApprovalRecord);

  /** `GET /v1/tokens/jwks`: the organization's public keys. */
  const JwksSchema = z.object({
    keys: z.array(z.looseObject({ kty: z.string().min(1) }).transform((jwk) => jwk as Jwk)),
  });

  /** One revocation, as `GET /v1/tokens/revoked` lists it and the revocation cache keeps it. */
  const RevocationSchema = z.object({
    tokenId: IdSchema,
    revokedAt: Time,
    reason: absent(z.string()),
  });

  /** A page of `GET /v1/tokens/revoked`. */
  const RevokedPageSchema = z.object({
    items: z.array(z.unknown()),
    next: z.object({ since: Time, afterTokenId: IdSchema }).nullish(),
  });

  /** The `token.revoked` stream message. */
  const TokenRevokedMessageSchema = z.object({ tokenId: IdSchema, reason: absent(z.string()) });
  return { PolicyVersionSchema, HaltRecordSchema, HaltListSchema, ApprovalRecordSchema, JwksSchema, RevocationSchema, RevokedPageSchema, TokenRevokedMessageSchema };
});

export type PolicyVersion = z.output<ReturnType<typeof wireResponses>["PolicyVersionSchema"]>;
