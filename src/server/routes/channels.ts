import express, { Router, type Response } from "express";
import { z } from "zod";
import { InvalidStateError, ReviewerNotAllowedError, TokenError, parseDuration, type ApprovalChannels, type ApprovalRecord } from "agent-warden";
import { sameOrigin } from "../../console/session.js";
import { actorOf, principalOf, requirePermission } from "../auth.js";
import type { ServerContext } from "../context.js";
import { HttpError } from "../errors.js";
import { IdSchema, parse } from "../validation.js";
import { jsonBody } from "./body.js";

const DeliveryQuerySchema = z.strictObject({
  approvalId: IdSchema.optional(),
  status: z.enum(["pending", "retrying", "delivered", "failed"]).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});
const LinkCreateSchema = z.strictObject({
  /** Whom the link is for (an e-mail, a chat handle): recorded as the reviewer. Default: the caller. */
  to: z.string().trim().min(1).max(200).optional(),
  ttl: z.union([z.number().int().positive(), z.string().max(20)]).optional(),
});
const LinkDecisionSchema = z.object({
  decision: z.enum(["approve", "reject"], "choose Approve or Reject"),
  reason: z.string().trim().max(4000).optional(),
});
const TokenSchema = z.string().max(2000).regex(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, "not an approval link");

/** The link page: no script at all, a form that posts to itself, never framed. */
const LINK_PAGE_HEADERS = {
  "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  "X-Frame-Options": "DENY",
  // The link is a capability: it never leaves in a Referer; same-origin (not no-referrer) so the form's post carries a real Origin.
  "Referrer-Policy": "same-origin",
  "Cache-Control": "no-store",
};

/**
 * Approval channels on the control plane: Slack's interaction endpoint and the one-time link pages
 * (authenticated by their own signatures, so mounted outside `/v1`'s API keys), and under `/v1` the
 * delivery records and link creation.
 */
export function channelRoutes(context: ServerContext): { open: Router; api: Router } {
  const open = Router();
  const api = Router();
  const limit = context.limits.body;

  api.get("/approval-channels/deliveries", requirePermission("approvals:read"), async (request, response) => {
    const principal = principalOf(response);
    const query = parse(DeliveryQuerySchema, request.query, "query");
    const channels = await context.channelsFor(principal.org);
    // A key bound to an agent reads that agent's deliveries only, as it reads only its own requests.
    response.json({ items: (await channels?.listDeliveries({ org: principal.org, ...query, ...(principal.agentId !== undefined && { agentId: principal.agentId }) })) ?? [] });
  });

  api.post("/approvals/:approvalId/links", requirePermission("approvals:decide"), ...jsonBody(limit), async (request, response) => {
    const principal = principalOf(response);
    const approvalId = parse(IdSchema, request.params.approvalId, "path");
    const input = parse(LinkCreateSchema, request.body ?? {});
    const channels = await context.channelsFor(principal.org);
    if (!channels?.accepts.links) throw new HttpError(409, "conflict", "approval links are not configured on this control plane (channels.links)");
    const record = await context.store.getApproval(principal.org, approvalId);
    if (record === undefined) throw new HttpError(404, "not_found", `approval "${approvalId}" not found`);
    if (record.status !== "pending") throw new HttpError(409, "conflict", `approval "${approvalId}" is already ${record.status}`);
    const ttl = input.ttl === undefined ? undefined : typeof input.ttl === "number" ? input.ttl : parseTtl(input.ttl);
    const link = channels.createLink(principal.org, record, { to: input.to ?? actorOf(principal), ttl });
    response.status(201).json({ approvalId, url: link.url, expiresAt: link.expiresAt });
  });

  // Slack signs the raw form body: it is read as bytes, verified, then parsed.
  open.post("/v1/channels/slack/interactions", express.raw({ type: () => true, limit }), async (request, response) => {
    const rawBody = Buffer.isBuffer(request.body) ? request.body.toString("utf8") : "";
    // The organization the button names picks whose signing secret verifies it; nothing is trusted before that.
    const channels = await context.channelsFor(slackOrgOf(rawBody) ?? "");
    if (!channels?.accepts.slack) throw new HttpError(404, "not_found", "Slack is not configured on this control plane");
    const answer = await channels.handleSlackInteraction({ rawBody, signature: request.get("x-slack-signature"), timestamp: request.get("x-slack-request-timestamp") });
    response.status(answer.status).json(answer.body);
  });

  open.get("/approval-links/:token", async (request, response) => {
    const channels = await context.channelsFor(linkOrgOf(request.params.token) ?? "");
    const found = await readLink(context, channels, request.params.token, response);
    if (!found) return;
    page(response, 200, "Approval request", requestView(found.record, found.to) + decisionForm());
  });

  open.post("/approval-links/:token", express.urlencoded({ extended: false, limit }), async (request, response) => {
    if (!sameOrigin(request)) return page(response, 403, "Refused", `<p>Decide from the approval page itself.</p>`);
    const channels = await context.channelsFor(linkOrgOf(request.params.token) ?? "");
    const found = await readLink(context, channels, request.params.token, response);
    if (!found) return;
    const parsed = LinkDecisionSchema.safeParse(request.body ?? {});
    if (!parsed.success) return page(response, 400, "Approval request", `<p class="error">Choose Approve or Reject.</p>` + requestView(found.record, found.to) + decisionForm());
    try {
      const record = await channels!.decideByLink(request.params.token, parsed.data.decision === "approve" ? "approved" : "rejected", parsed.data.reason || undefined);
      page(response, 200, record.status === "approved" ? "Approved" : "Rejected", `<p class="outcome">${escapeHtml(record.toolName)} was <strong>${record.status}</strong> by ${escapeHtml(record.reviewer ?? "")}.</p><p>This link cannot be used again.</p>`);
    } catch (error) {
      if (error instanceof ReviewerNotAllowedError) return page(response, 403, "Refused", `<p class="error" role="alert">${escapeHtml(bare(error.message))}</p>`);
      if (error instanceof InvalidStateError || error instanceof TokenError || (error as { status?: number }).status === 409) return refused(response, error);
      throw error;
    }
  });

  return { open, api };
}

/** The link's request, still pending; answers the page itself (410, 401, 404) otherwise. */
async function readLink(context: ServerContext, channels: ApprovalChannels | undefined, token: string | undefined, response: Response): Promise<{ record: ApprovalRecord; to: string | undefined } | undefined> {
  if (!channels?.accepts.links) {
    page(response, 404, "Not found", "<p>Approval links are not configured here.</p>");
    return undefined;
  }
  if (!TokenSchema.safeParse(token).success) {
    page(response, 401, "Invalid link", "<p>This approval link is not genuine.</p>");
    return undefined;
  }
  try {
    const claims = channels.readLink(token!);
    const record = await context.store.getApproval(claims.org, claims.approvalId);
    if (record === undefined) {
      page(response, 404, "Not found", "<p>This approval request no longer exists.</p>");
      return undefined;
    }
    if (record.status !== "pending" || record.expiresAt <= Date.now()) {
      refused(response, new InvalidStateError(`this request is already ${record.status === "pending" ? "expired" : record.status}${record.reviewer ? ` (by ${record.reviewer})` : ""}; the link cannot be used again`));
      return undefined;
    }
    return { record: channels.redacted(record), to: claims.to };
  } catch (error) {
    if (error instanceof InvalidStateError || error instanceof TokenError) {
      refused(response, error);
      return undefined;
    }
    throw error;
  }
}

function refused(response: Response, error: unknown): void {
  const expired = error instanceof TokenError && error.reason === "expired";
  const status = error instanceof TokenError ? (expired ? 410 : 401) : 410;
  const message = error instanceof TokenError ? (expired ? "This approval link has expired." : "This approval link is not genuine.") : `${escapeHtml(bare((error as Error).message))}`;
  page(response, status, "Link refused", `<p class="error" role="alert">${message}</p>`);
}

function bare(message: string): string {
  const text = message.replace(/^[a-z_]+: /, "");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function requestView(record: ApprovalRecord, to: string | undefined): string {
  const rows: [string, string][] = [
    ["Tool", record.toolName],
    ["Agent", record.agentId],
    ["Run", record.runId],
    ["Policy", record.policyId ?? "(none)"],
    ["Why", record.reason ?? ""],
    ...(record.agentContext?.goal ? ([["Goal", record.agentContext.goal]] as [string, string][]) : []),
    ["Expires", new Date(record.expiresAt).toISOString()],
    ["Decided as", to ?? "approval link"],
  ];
  return `<dl class="link-request">${rows.map(([k, v]) => `<dt>${k}</dt><dd data-field="${k.toLowerCase()}">${escapeHtml(v)}</dd>`).join("")}</dl>
<h2>Arguments <small>(secrets redacted)</small></h2>
<pre id="payload">${escapeHtml(JSON.stringify(record.payload ?? null, null, 2))}</pre>`;
}

function decisionForm(): string {
  return `<form method="post" class="link-decision">
<label for="reason">Reason (optional)</label>
<textarea id="reason" name="reason" rows="2" maxlength="4000"></textarea>
<p><button type="submit" name="decision" value="approve" class="primary">Approve</button> <button type="submit" name="decision" value="reject">Reject</button></p>
<p class="hint">This link works once: it admits exactly the call shown above.</p>
</form>`;
}

function page(response: Response, status: number, title: string, content: string): void {
  response
    .status(status)
    .set(LINK_PAGE_HEADERS)
    .type("html")
    .send(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="robots" content="noindex">
<title>${escapeHtml(title)} · Warden</title><link rel="stylesheet" href="/assets/console.css"></head>
<body><main class="approval-link"><h1>${escapeHtml(title)}</h1>
${content}
</main></body></html>`);
}

function escapeHtml(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;").replaceAll("'", "&#39;");
}

function parseTtl(value: string): number {
  try {
    return parseDuration(value);
  } catch {
    throw new HttpError(400, "invalid_request", `invalid ttl "${value}" (use e.g. 30m, 1h)`, { problems: [{ path: "ttl", message: "use e.g. 30m, 1h" }] });
  }
}

/** The organization a Slack interaction's button names, unverified: only to pick whose secret verifies it. */
function slackOrgOf(rawBody: string): string | undefined {
  try {
    const payload = JSON.parse(new URLSearchParams(rawBody).get("payload") ?? "null") as { actions?: { value?: string }[] } | null;
    const org = (JSON.parse(payload?.actions?.[0]?.value ?? "null") as { org?: unknown } | null)?.org;
    return typeof org === "string" ? org : undefined;
  } catch {
    return undefined;
  }
}

/** The organization a link's claims name, unverified: only to pick whose secret verifies it. */
function linkOrgOf(token: string | undefined): string | undefined {
  try {
    const org = (JSON.parse(Buffer.from((token ?? "").split(".")[0] ?? "", "base64url").toString("utf8")) as { org?: unknown }).org;
    return typeof org === "string" ? org : undefined;
  } catch {
    return undefined;
  }
}
