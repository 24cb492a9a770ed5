import { Router } from "express";
import { principalOf, requirePermission, withArticle } from "../auth.js";
import type { ServerContext } from "../context.js";
import { HttpError } from "../errors.js";
import { AGENT_TOPICS, ALL_TOPICS, formatEvent, type Subscriber, type Topic } from "../stream.js";
import { parse, STREAM_EVENT_ID, StreamQuerySchema } from "../validation.js";

const REPLAY_PAGE = 1000;

/**
 * `GET /v1/stream`: server-sent events. A client that sends `Last-Event-ID` (or `?lastEventId=`)
 * gets every durable message after it, then live ones; a new client gets `hello` with the current
 * id; a client whose id is older than what is kept gets `reset` (re-read the state, then follow).
 */
export function streamRoutes(context: ServerContext): Router {
  const { store, hub } = context;
  const router = Router();

  router.get("/stream", requirePermission("stream"), async (request, response) => {
    const principal = principalOf(response);
    const query = parse(StreamQuerySchema, request.query, "query");
    const header = request.get("last-event-id");
    if (header !== undefined && !STREAM_EVENT_ID.test(header.trim())) throw new HttpError(400, "invalid_request", "Last-Event-ID must be a stream event id", { problems: [{ path: "Last-Event-ID", message: "a stream event id" }] });
    const lastEventId = header !== undefined ? Number(header.trim()) : query.lastEventId !== undefined ? Number(query.lastEventId) : undefined;
    const allowed = principal.role === "agent" ? AGENT_TOPICS : ALL_TOPICS;
    const topics = new Set<Topic>((query.topics ?? allowed).filter((topic) => allowed.includes(topic)));
    if (topics.size === 0) throw new HttpError(403, "insufficient_scope", `${withArticle(principal.role)} key may subscribe to ${allowed.join(", ")}`);
    const release = await context.streamLimits.admit(principal);

    response.status(200).set({ "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache, no-transform", Connection: "keep-alive", "X-Accel-Buffering": "no" });
    response.flushHeaders();
    request.socket.setNoDelay(true);
    request.socket.setKeepAlive(true);
    response.write(`retry: ${context.retryMs}\n\n`);

    // Subscribe first (buffering), then replay: nothing published in between is lost.
    const subscriber: Subscriber = { org: principal.org, keyId: principal.keyId, agentId: principal.agentId, topics, response, buffer: [], lastSeq: lastEventId ?? 0, until: response.locals.sessionExpiresAt as number | undefined };
    hub.add(subscriber);
    response.on("close", () => {
      hub.remove(subscriber);
      release();
    });
    const bounds = await store.streamBounds(principal.org);
    if (lastEventId === undefined) {
      subscriber.lastSeq = bounds.latest;
      response.write(formatEvent("hello", { org: principal.org, role: principal.role, topics: [...topics], lastEventId: bounds.latest }, bounds.latest));
    } else if (lastEventId > bounds.latest || (bounds.oldest > lastEventId + 1 && bounds.latest > lastEventId)) {
      subscriber.lastSeq = bounds.latest;
      response.write(formatEvent("reset", { reason: lastEventId > bounds.latest ? "unknown event id" : "events after this id are no longer kept", lastEventId: bounds.latest }, bounds.latest));
    } else {
      let after = lastEventId;
      for (;;) {
        const page = await store.streamAfter(principal.org, after, REPLAY_PAGE);
        for (const message of page) hub.deliver(subscriber, message);
        if (page.length < REPLAY_PAGE || response.destroyed) break;
        after = page[page.length - 1]!.seq!;
      }
    }
    hub.release(subscriber);
  });

  return router;
}
