import { createHmac, timingSafeEqual } from "node:crypto";
import { ConfigError } from "../../errors.js";

/**
 * The key of a Standard Webhooks secret: `whsec_` followed by base64 (at least 24 bytes).
 * @internal
 */
export function webhookSecretKey(secret: string): Buffer {
  if (!secret.startsWith("whsec_")) throw new ConfigError('a webhook secret starts with "whsec_" followed by base64 (Standard Webhooks)');
  const key = Buffer.from(secret.slice("whsec_".length), "base64");
  if (key.length < 24 || key.length > 64) throw new ConfigError("a webhook secret holds 24 to 64 bytes of base64 after \"whsec_\"");
  return key;
}

/**
 * The `webhook-signature` header of a Standard Webhooks delivery: `v1,` and the base64 HMAC-SHA256 of
 * `"<webhook-id>.<webhook-timestamp>.<body>"` under the secret's key.
 * @example
 * import { signWebhook } from "agent-warden";
 * const signature = signWebhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_1", 1674087231, '{"type":"approval.requested"}');
 */
export function signWebhook(secret: string, id: string, timestamp: number, body: string): string {
  return `v1,${createHmac("sha256", webhookSecretKey(secret)).update(`${id}.${timestamp}.${body}`).digest("base64")}`;
}

/**
 * Checks Slack's request signature: `X-Slack-Signature` is `v0=` and the hex HMAC-SHA256 of
 * `"v0:<X-Slack-Request-Timestamp>:<raw body>"` under the app's signing secret, and the timestamp is
 * within `toleranceSeconds` of now (a replayed request is refused).
 * @example
 * import { verifySlackSignature } from "agent-warden";
 * const ok = verifySlackSignature(process.env.SLACK_SIGNING_SECRET!, rawBody, request.headers["x-slack-signature"], request.headers["x-slack-request-timestamp"]);
 */
export function verifySlackSignature(signingSecret: string, rawBody: string, signature: string | undefined, timestamp: string | undefined, now = Date.now(), toleranceSeconds = 300): boolean {
  if (signature === undefined || timestamp === undefined || !/^\d{1,12}$/.test(timestamp)) return false;
  if (Math.abs(now / 1000 - Number(timestamp)) > toleranceSeconds) return false;
  const expected = `v0=${createHmac("sha256", signingSecret).update(`v0:${timestamp}:${rawBody}`).digest("hex")}`;
  return safeEqual(expected, signature);
}

/** @internal Constant-time comparison of two strings. */
export function safeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
