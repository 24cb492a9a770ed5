import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import express, { type ErrorRequestHandler, type Express, type NextFunction, type Request, type Response } from "express";
import { type ApprovalChannelsOptions, type ApprovalRecord, ConfigError, InvalidInputError, InvalidStateError, NotFoundError, PolicyError, ReviewerNotAllowedError, TokenError, WardenError } from "agent-warden";
import { mountConsole } from "../console/index.js";
import { authenticate } from "./auth.js";
import type { ServerContext } from "./context.js";
import { AgentHaltedError, bareMessage, HttpError, PreconditionFailedError } from "./errors.js";
import { adminRoutes } from "./routes/admin.js";
import { approvalRoutes } from "./routes/approvals.js";
import { channelRoutes } from "./routes/channels.js";
import { haltRoutes } from "./routes/halts.js";
import { policyProblems, policyRoutes } from "./routes/policies.js";
import { streamRoutes } from "./routes/stream.js";
import { telemetryRoutes } from "./routes/telemetry.js";
import { tokenRoutes } from "./routes/tokens.js";
import { PostgresControlPlaneStore } from "./postgres-store.js";
import { SqliteControlPlaneStore } from "./sqlite-store.js";
import type { Changes, ControlPlaneStore, Role } from "./store.js";
import { StreamHub } from "./stream.js";
import { OrgChannels } from "./org-channels.js";
import { StreamLimits } from "./stream-limits.js";
import { MAX_INGEST_BYTES } from "../wire/limits.js";
import type { WitnessConfig, WitnessResult } from "../ledger/witnessing.js";
import { checkWitnesses, ServerWitnessing } from "./org-witnessing.js";

/** How often open streams are checked against revoked keys. */
const KEY_CHECK_INTERVAL = 5000;

/**
 * Options of `createWardenServer`; every one has a default.
 * @example
 * import { createWardenServer, type WardenServerOptions } from "agent-warden/server";
 * const options: WardenServerOptions = { db: "./warden.db", bodyLimit: "512kb", maxStreams: 200 };
 * const server = createWardenServer(options);
 */
export interface WardenServerOptions {
  /** SQLite database (the embedded store's format). Default `./warden.db`; `:memory:` in tests. Ignored with `store`. */
  db?: string | undefined;
  /**
   * A PostgreSQL URL (`postgres://user:password@host:port/db`): the control plane on PostgreSQL, so
   * several replicas can share one database (needs the `pg` package). Without it, SQLite at `db`.
   */
  database?: string | undefined;
  /** Another store implementation. */
  store?: ControlPlaneStore | undefined;
  /** Largest JSON body, except event batches. Default 256 KB. */
  bodyLimit?: number | string | undefined;
  /** Largest event batch body. Default 5 MB. */
  ingestBodyLimit?: number | string | undefined;
  /** How often the stream sends a heartbeat; clients count silence longer than their staleness bound as unknown halt state. Default 2 s. */
  heartbeatInterval?: number | undefined;
  /** How often overdue approvals expire and changes made by other processes (the CLI) are announced. Default 250 ms. */
  sweepInterval?: number | undefined;
  /** How long durable stream messages are kept for reconnecting clients. Default 7 days. */
  streamRetention?: number | undefined;
  /** What a reconnecting EventSource waits. Default 1 s. */
  streamRetry?: number | undefined;
  /** Most streams one organization may hold open; beyond it `GET /v1/stream` answers 503 and clients poll. Default 1000. */
  maxStreams?: number | undefined;
  /** Most streams one API key may hold open, so one agent cannot take its organization's slots. Default 20 (at most `maxStreams`). */
  maxStreamsPerKey?: number | undefined;
  /** Serve the web console at `/` (sign-in with a reviewer or admin key). Default true. */
  console?: boolean | undefined;
  /**
   * Behind a TLS-terminating proxy: Express's `trust proxy` setting (e.g. `1` for one hop, or the
   * proxy's address), so `X-Forwarded-Proto: https` marks the console's session cookie `Secure`.
   */
  trustProxy?: boolean | number | string | undefined;
  /**
   * Approval channels: signed webhooks (Standard Webhooks), Slack (a message with Approve / Reject,
   * decided through `/v1/channels/slack/interactions`), one-time approval links (`/approval-links/…`).
   * Every request and outcome of every organization is delivered; `GET /v1/approval-channels/deliveries` lists deliveries.
   */
  channels?: ApprovalChannelsOptions | undefined;
  /**
   * Outside witnesses asked to cosign each organization's checkpoints (`warden witness`, or any C2SP
   * tlog-witness that follows this server's ledger key), as in the embedded `ledger.witnesses`: URL and
   * verifier key. Cosignatures are kept on the checkpoints and travel in evidence bundles; a witness that
   * does not answer is reported to `onError` and asked again next round, never holding up a write.
   */
  witnesses?: readonly WitnessConfig[] | undefined;
  /** How often new checkpoints are signed and sent to the witnesses. Default 10 s. */
  witnessInterval?: number | undefined;
  /** More routes of your own, mounted after the API and the console and before the 404 handler. */
  extend?: ((app: Express, context: ServerContext) => void) | undefined;
  /** Receives unexpected errors (500s, background failures). Default: `console.error`. */
  onError?: ((error: unknown) => void) | undefined;
}

/**
 * A control plane: the Express app, its store, and its lifecycle.
 * @example
 * import { createWardenServer, type WardenServer } from "agent-warden/server";
 * const server: WardenServer = createWardenServer({ db: ":memory:" });
 * await server.listen(0);
 * await server.close();
 */
export interface WardenServer {
  readonly app: Express;
  readonly store: ControlPlaneStore;
  /** Listens on `port` (0: any free port) and `host` (default 127.0.0.1). */
  listen(port?: number, host?: string): Promise<{ port: number; host: string; url: string }>;
  /**
   * Signs a checkpoint of each organization's new entries and asks the `witnesses` to cosign it now (rounds
   * also run every `witnessInterval`). Never rejects: each organization's results say what each witness did.
   */
  witness(): Promise<Record<string, WitnessResult[]>>;
  /** Ends every stream, stops listening and closes the store. Safe to call twice. */
  close(): Promise<void>;
}

/**
 * Creates the control plane: `/v1` HTTP API, server-sent events at `/v1/stream`, API keys with
 * roles, every query filtered by the key's organization.
 * @example
 * import { createWardenServer } from "agent-warden/server";
 * const server = createWardenServer({ db: "./warden.db" });
 * const { url } = await server.listen(4000);
 */
export function createWardenServer(options: WardenServerOptions = {}): WardenServer {
  const onError = options.onError ?? ((error: unknown) => console.error("[warden] server:", error));
  // Before the store opens: a bad witness is a setup error that leaves nothing open.
  checkWitnesses(options.witnesses ?? []);
  const store: ControlPlaneStore =
    options.store ??
    (options.database !== undefined ? new PostgresControlPlaneStore({ url: options.database, onError }) : new SqliteControlPlaneStore({ path: options.db ?? "./warden.db", onError, ingestThread: true }));
  const hub = new StreamHub(options.heartbeatInterval ?? 2000);
  // The server's channels (`channels`, `--channels`) serve every organization; without them, each organization's policy set may declare its own.
  const channels = new OrgChannels(options.channels, store, {
    decide: async (org, approvalId, status, input) => {
      const { record, changes } = await store.decideApproval(org, approvalId, status, input);
      publish(changes);
      return record;
    },
    get: (org, approvalId) => store.getApproval(org, approvalId),
    onError,
  }, onError);
  // Announcements go out in the order they happened (a request before its outcome).
  let announcing: Promise<void> = Promise.resolve();
  const publish = (changes: Changes | readonly Changes[], origin: "here" | "replica" = "here") => {
    for (const change of ([] as Changes[]).concat(changes)) {
      hub.publish(change);
      // Requests and outcomes, whoever made them (an agent, a reviewer, the sweeper, a halt, the CLI), reach the channels.
      // Another replica delivers its own changes; here only the Slack messages this replica posted are updated.
      const approvals = change.messages.filter((message) => message.type === "approval.requested" || message.type === "approval.resolved");
      if (approvals.length === 0) continue;
      announcing = announcing
        .then(async () => {
          const serving = await channels.for(change.org);
          if (serving) for (const message of approvals) {
            if (message.type === "approval.requested" && origin === "here") serving.requested(change.org, message.data as ApprovalRecord);
            else if (message.type === "approval.resolved") serving.decided(change.org, message.data as ApprovalRecord, { onlyOwnMessages: origin === "replica" });
          }
        })
        .catch(onError);
    }
  };
  const limits = { body: options.bodyLimit ?? "256kb", ingestBody: options.ingestBodyLimit ?? MAX_INGEST_BYTES, streams: options.maxStreams ?? 1000, streamsPerKey: Math.min(options.maxStreamsPerKey ?? 20, options.maxStreams ?? 1000) };
  const streamLimits = new StreamLimits(hub, store.streamSlots, { streams: limits.streams, perKey: limits.streamsPerKey }, onError);
  // The organizations' checkpoints go to the witnesses in rounds, in the background.
  const witnessing = witnessingOf(store, options.witnesses ?? [], onError);
  const context: ServerContext = { store, hub, publish, limits, streamLimits, retryMs: options.streamRetry ?? 1000, channelsFor: (org) => channels.for(org), witnessKeys: witnessing?.keys ?? [] };

  // Another replica's halts, decisions, policy versions and revocations reach this replica's streams.
  const unsubscribe = store.onExternalChanges?.((changes) => publish(changes, "replica"));

  const app = express();
  app.disable("x-powered-by");
  if (options.trustProxy !== undefined) app.set("trust proxy", options.trustProxy);
  app.set("etag", false);
  app.use((_request, response, next) => {
    response.set({ "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store" });
    next();
  });

  // The web console (src/console): pages at `/`, and its session cookie as credentials for `/v1`.
  if (options.console !== false) mountConsole(app, context);

  // For load balancers: the process is up; the database is reachable and migrated.
  app.get("/healthz", (_request, response) => {
    response.json({ status: "ok" });
  });
  app.get("/readyz", async (_request, response) => {
    try {
      await store.ping();
      response.json({ status: "ready", store: store.kind });
    } catch {
      response.status(503).set("Retry-After", "5").json({ status: "unavailable", store: store.kind });
    }
  });

  app.get("/v1/health", async (_request, response) => {
    try {
      await store.ping();
      response.json({ status: "ok", store: store.kind, time: Date.now() });
    } catch (error) {
      onError(error);
      response.status(503).json({ status: "unavailable", store: store.kind, time: Date.now() });
    }
  });

  const channelRouters = channelRoutes(context);
  app.use(channelRouters.open);

  const tokens = tokenRoutes(context);
  app.get("/.well-known/jwks.json", authenticate(store), tokens.jwks);
  const api = express.Router();
  api.use(authenticate(store));
  api.use(telemetryRoutes(context));
  api.use(policyRoutes(context));
  api.use(approvalRoutes(context));
  api.use(channelRouters.api);
  api.use(haltRoutes(context));
  api.use(tokens.router);
  api.use(adminRoutes(context));
  api.use(streamRoutes(context));
  app.use("/v1", api);
  options.extend?.(app, context);
  app.use((request: Request) => {
    throw new HttpError(404, "not_found", `no route for ${request.method} ${request.path}`);
  });
  app.use(errorHandler(onError));

  let stopped = false;
  // A sweep or key check that close() cuts short fails on the closed store: not news.
  const background = (error: unknown) => {
    if (!stopped) onError(error);
  };
  const sweeper = setInterval(() => {
    void (async () => {
      publish(await store.expireApprovals(Date.now()));
      await store.escalateApprovals?.(Date.now());
      publish(await store.pollExternalChanges());
    })().catch(background);
  }, options.sweepInterval ?? 250);
  sweeper.unref();
  // Keys revoked elsewhere (the CLI, another server on the same database) end their streams too.
  const keyCheck = setInterval(() => {
    void (async () => {
      for (const org of hub.orgs()) {
        const active = new Set((await store.listKeys(org)).filter((key) => key.revokedAt === undefined).map((key) => key.keyId));
        hub.drop(org, (subscriber) => !active.has(subscriber.keyId));
      }
    })().catch(background);
  }, KEY_CHECK_INTERVAL);
  keyCheck.unref();
  const retention = options.streamRetention ?? 7 * 86_400_000;
  const pruner = setInterval(() => void store.pruneStream(Date.now() - retention).catch(background), Math.min(retention, 3_600_000));
  pruner.unref();

  const witnessTimer = witnessing && setInterval(() => void witnessing.sync(), options.witnessInterval ?? 10_000);
  witnessTimer?.unref();

  let server: Server | undefined;
  return {
    app,
    store,
    witness: () => witnessing?.sync() ?? Promise.resolve({}),
    listen(port = 0, host = "127.0.0.1") {
      // The ingest writer boots while the server starts, not on the first batch.
      if (store instanceof SqliteControlPlaneStore) void store.startIngestThread();
      return new Promise((resolve, reject) => {
        const listening = app.listen(port, host, (error?: Error) => {
          if (error) return reject(error);
          const address = listening.address() as AddressInfo;
          const shown = address.family === "IPv6" ? `[${address.address}]` : address.address;
          resolve({ port: address.port, host: address.address, url: `http://${shown}:${address.port}` });
        });
        server = listening;
        listening.keepAliveTimeout = 65_000;
      });
    },
    async close() {
      if (stopped) return;
      stopped = true;
      clearInterval(sweeper);
      clearInterval(keyCheck);
      clearInterval(pruner);
      if (witnessTimer) clearInterval(witnessTimer);
      witnessing?.close();
      channels.close();
      unsubscribe?.();
      streamLimits.close();
      hub.close();
      if (server) {
        const closing = new Promise<void>((resolve) => server!.close(() => resolve()));
        server.closeAllConnections();
        await closing;
      }
      await store.close();
    },
  };
}

/** The witnessing of the store's organizations, when witnesses are configured (a store without the means is a setup error). */
function witnessingOf(store: ControlPlaneStore, witnesses: readonly WitnessConfig[], onError: (error: unknown) => void): ServerWitnessing | undefined {
  if (witnesses.length === 0) return undefined;
  const { ledgerOrgs, checkpointLedger, orgWitnessedLog } = store;
  if (ledgerOrgs === undefined || checkpointLedger === undefined || orgWitnessedLog === undefined) throw new ConfigError("witnesses: this store cannot have its checkpoints witnessed (it lacks ledgerOrgs, checkpointLedger and orgWitnessedLog)");
  return new ServerWitnessing({ ledgerOrgs: () => ledgerOrgs.call(store), checkpointLedger: (org) => checkpointLedger.call(store, org), orgWitnessedLog: (org) => orgWitnessedLog.call(store, org) }, witnesses, { onError });
}

/**
 * Creates an admin key for `org` when it has none; returns the key (to show once) or undefined.
 * @example
 * import { createWardenServer, ensureAdminKey } from "agent-warden/server";
 * const server = createWardenServer({ db: "./warden.db" });
 * const key = await ensureAdminKey(server.store, "acme");
 * if (key) console.log(`admin key, shown once: ${key}`);
 */
export async function ensureAdminKey(store: ControlPlaneStore, org: string, role: Role = "admin"): Promise<string | undefined> {
  if (await store.hasActiveKey(org, role)) return undefined;
  return (await store.createKey({ org, role, name: "bootstrap admin", actor: "warden serve" })).key;
}

interface BodyParserError extends Error {
  type?: string;
  status?: number;
  code?: string;
}

/** Maps every error to `{ error: { code, message, problems? } }`; only unexpected ones reach `onError`. */
function errorHandler(onError: (error: unknown) => void): ErrorRequestHandler {
  return function wardenErrorHandler(error: unknown, request: Request, response: Response, _next: NextFunction): void {
    const http = toHttpError(error);
    if (http.code === "internal") onError(error);
    if (response.headersSent) {
      response.destroy();
      return;
    }
    if (http.headers) response.set(http.headers);
    if (request.method === "HEAD") {
      response.status(http.status).end();
      return;
    }
    response.status(http.status).json({ error: { code: http.code, message: http.message, ...(http.problems && { problems: http.problems }) } });
  };
}

/** Connection failures of the database client: refused, reset, terminated, the server shutting down or starting (SQLSTATE 08xxx, 57P0x), or this replica closing its pool. */
function databaseUnavailable(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string" && (/^08/.test(code) || /^57P0[1-3]$/.test(code) || ["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH"].includes(code))) return true;
  const message = error instanceof Error ? error.message : "";
  return /Connection terminated|connection timeout|Client has encountered a connection error|Cannot use a pool after calling end/i.test(message);
}

function toHttpError(error: unknown): HttpError {
  if (error instanceof HttpError) return error;
  // Before the body parser's checks: this error too carries a 4xx `status` and a string `code`.
  if (error instanceof ReviewerNotAllowedError) return new HttpError(403, "reviewer_not_allowed", bareMessage(error));
  const parserError = error as BodyParserError;
  if (typeof parserError?.type === "string" && typeof parserError.status === "number") {
    if (parserError.type === "entity.too.large") return new HttpError(413, "payload_too_large", "the body is larger than this endpoint accepts");
    if (parserError.type === "encoding.unsupported" || parserError.type === "charset.unsupported") return new HttpError(415, "unsupported_media_type", parserError.message);
    if (parserError.type === "entity.parse.failed") return new HttpError(400, "invalid_request", "the body is not valid JSON");
    if (parserError.status >= 400 && parserError.status < 500) return new HttpError(400, "invalid_request", parserError.message);
  }
  // A body that does not decode as its Content-Encoding says: zlib's error, marked 400 by the body parser, is the client's fault.
  if (typeof parserError?.status === "number" && parserError.status >= 400 && parserError.status < 500 && typeof (parserError as { code?: unknown }).code === "string") {
    return new HttpError(400, "invalid_request", "the body does not decode as its Content-Encoding says");
  }
  if (error instanceof PolicyError) return new HttpError(400, "invalid_policy", bareMessage(error), { problems: policyProblems(error) });
  if (error instanceof PreconditionFailedError) return new HttpError(412, "precondition_failed", bareMessage(error), { headers: { ETag: error.current } });
  if (error instanceof AgentHaltedError) return new HttpError(403, "agent_halted", bareMessage(error));
  if (error instanceof NotFoundError) return new HttpError(404, "not_found", bareMessage(error));
  if (error instanceof InvalidStateError) return new HttpError(409, "conflict", bareMessage(error));
  if (error instanceof InvalidInputError || error instanceof ConfigError || error instanceof TokenError) return new HttpError(400, "invalid_request", bareMessage(error));
  if (WardenError.isInstance(error) && error.code === "policy_invalid") return new HttpError(400, "invalid_policy", bareMessage(error));
  // The database went away (a restart, a lost network): nothing was committed; the caller tries again, here or on another replica.
  if (databaseUnavailable(error)) return new HttpError(503, "unavailable", "the database is unreachable; try again shortly", { headers: { "Retry-After": "2" }, cause: error });
  // URIError from a malformed path escape, and the like.
  if (error instanceof URIError) return new HttpError(400, "invalid_request", "malformed URL");
  return new HttpError(500, "internal", "internal error", { cause: error });
}
