import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import type { RequestOptions } from "@modelcontextprotocol/sdk/shared/protocol.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import { UriTemplate } from "@modelcontextprotocol/sdk/shared/uriTemplate.js";
import { ErrorCode, McpError, ResultSchema, type Notification, type ServerCapabilities } from "@modelcontextprotocol/sdk/types.js";
import { ConfigError } from "agent-warden";

/**
 * What joins a server's name to the names of its tools and prompts behind a gateway with several
 * upstreams: `files__read_file`. Valid in MCP tool names (letters, digits, `_`, `-`, `.`).
 * @example
 * import { UPSTREAM_SEPARATOR } from "agent-warden/mcp";
 * const at = name.indexOf(UPSTREAM_SEPARATOR); // the first one: server names never hold it
 * const [server, tool] = [name.slice(0, at), name.slice(at + UPSTREAM_SEPARATOR.length)];
 */
export const UPSTREAM_SEPARATOR = "__";

/** Letters, digits, `-` and single `_` inside (not last): the first `__` of a prefixed name is always the separator. */
const SERVER_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9-]|_(?!_))*(?<!_)$/;

/** A bound on the pages read to find a resource's server, against a server whose cursor never ends. */
const MAX_DISCOVERY_PAGES = 100;

/** MCP's own error for a resource no server knows. */
const RESOURCE_NOT_FOUND = -32002;

/** One server behind the gateway, and its connection once made. */
export interface Upstream {
  name: string;
  source: Client | Transport;
  client: Client | undefined;
}

type Outgoing = { method: string; params?: Record<string, unknown> | undefined };

/** The lists that are merged, the capability that offers each, and the key of its items. */
const LISTS: Record<string, { capability: keyof ServerCapabilities; key: string; rename: "name" | "uri" }> = {
  "tools/list": { capability: "tools", key: "tools", rename: "name" },
  "prompts/list": { capability: "prompts", key: "prompts", rename: "name" },
  "resources/list": { capability: "resources", key: "resources", rename: "uri" },
  "resources/templates/list": { capability: "resources", key: "resourceTemplates", rename: "uri" },
};

/**
 * Checks the names of a gateway's upstreams: each a valid prefix, no two alike once a client that
 * ignores case reads them. A mistake here is the host's configuration, so it fails at startup.
 */
export function checkServerNames(names: readonly string[]): void {
  if (names.length === 0) throw new ConfigError("the MCP gateway needs at least one upstream server");
  const seen = new Map<string, string>();
  for (const name of names) {
    if (!SERVER_NAME.test(name)) {
      throw new ConfigError(`MCP server name "${name}" is not valid as a tool-name prefix: use letters, digits, "-" and single "_" (not first or last, not doubled), e.g. "files" or "github-issues"`);
    }
    const other = seen.get(name.toLowerCase());
    if (other !== undefined) throw new ConfigError(`MCP server names "${other}" and "${name}" collide: their tools would be "${other}${UPSTREAM_SEPARATOR}…" and "${name}${UPSTREAM_SEPARATOR}…", which clients that ignore case cannot tell apart`);
    seen.set(name.toLowerCase(), name);
  }
}

/**
 * Several upstream servers answering as one: tools and prompts under `<server>__<name>`, resources
 * under their own URIs routed back to the server that listed them (or whose template matches), lists
 * merged with a cursor that carries each server's own, capabilities merged, instructions joined.
 */
export class UpstreamRouter {
  readonly upstreams: readonly Upstream[];
  private readonly byName: Map<string, Upstream>;
  /** Which servers listed each resource URI, and each template: how a read finds its server. */
  private readonly owners = new Map<string, Set<string>>();
  private readonly templates = new Map<string, { names: Set<string>; template: UriTemplate | undefined }>();
  /** Every server's whole resource lists have been read since they last changed. */
  private discovered = false;

  constructor(sources: Record<string, Client | Transport>) {
    checkServerNames(Object.keys(sources));
    this.upstreams = Object.entries(sources).map(([name, source]) => ({ name, source, client: undefined }));
    this.byName = new Map(this.upstreams.map((upstream) => [upstream.name, upstream]));
  }

  /** The capabilities of all servers together: a feature any offers, a flag (`listChanged`, `subscribe`) any sets. */
  capabilities(): ServerCapabilities {
    const merged: Record<string, unknown> = {};
    for (const { client } of this.upstreams) mergeInto(merged, client?.getServerCapabilities() ?? {});
    return merged as ServerCapabilities;
  }

  /** Each server's instructions under its name, so the model knows which prefix they speak of. */
  instructions(): string | undefined {
    const parts = this.upstreams.flatMap(({ name, client }) => {
      const text = client?.getInstructions();
      return text === undefined || text.trim() === "" ? [] : [`## ${name} (tools and prompts named "${name}${UPSTREAM_SEPARATOR}…")\n${text.trim()}`];
    });
    return parts.length === 0 ? undefined : parts.join("\n\n");
  }

  /** The server a prefixed tool or prompt name belongs to, and the name it knows it by. */
  split(prefixed: string): { upstream: Upstream; name: string } | undefined {
    const at = prefixed.indexOf(UPSTREAM_SEPARATOR);
    if (at <= 0) return undefined;
    const upstream = this.byName.get(prefixed.slice(0, at));
    return upstream === undefined ? undefined : { upstream, name: prefixed.slice(at + UPSTREAM_SEPARATOR.length) };
  }

  /** The name of the server a request goes to (for the record), when one alone answers it. */
  async serverOf(request: Outgoing, options: RequestOptions): Promise<string | undefined> {
    const params = request.params ?? {};
    if (request.method === "tools/call" || request.method === "prompts/get") return typeof params.name === "string" ? this.split(params.name)?.upstream.name : undefined;
    if (typeof params.uri === "string") return (await this.route(params.uri, "uri", options)).name;
    return undefined;
  }

  /** After a server says its resources changed, the next unknown URI reads the lists again. */
  resourcesChanged(): void {
    this.discovered = false;
  }

  /** Sends a request of the agent's to the server (or servers) it is for, and answers as one server. */
  async request(request: Outgoing, options: RequestOptions): Promise<Record<string, unknown>> {
    const params = request.params ?? {};
    const list = LISTS[request.method];
    if (list !== undefined) return this.list(request, list, options);
    switch (request.method) {
      case "tools/call":
      case "prompts/get": {
        const name = typeof params.name === "string" ? params.name : "";
        const target = this.split(name);
        if (target === undefined) throw new McpError(ErrorCode.InvalidParams, `${request.method === "tools/call" ? "Tool" : "Prompt"} ${name} not found`);
        return send(target.upstream, { method: request.method, params: { ...params, name: target.name } }, options);
      }
      case "resources/read":
      case "resources/subscribe":
      case "resources/unsubscribe": {
        const uri = typeof params.uri === "string" ? params.uri : "";
        return send(await this.route(uri, "uri", options), request, options);
      }
      case "completion/complete": {
        const ref = (params.ref ?? {}) as { type?: unknown; name?: unknown; uri?: unknown };
        if (ref.type === "ref/prompt" && typeof ref.name === "string") {
          const target = this.split(ref.name);
          if (target === undefined) throw new McpError(ErrorCode.InvalidParams, `Prompt ${ref.name} not found`);
          return send(target.upstream, { method: request.method, params: { ...params, ref: { ...ref, name: target.name } } }, options);
        }
        if (ref.type === "ref/resource" && typeof ref.uri === "string") return send(await this.route(ref.uri, "template", options), request, options);
        throw new McpError(ErrorCode.InvalidParams, "completion/complete needs a ref/prompt or ref/resource");
      }
      case "ping":
      case "logging/setLevel": {
        // Every server is asked: the gateway is alive when all are, and each logs at the level asked.
        const asked = request.method === "ping" ? this.upstreams : this.offering("logging");
        await Promise.all(asked.map((upstream) => send(upstream, request, options)));
        return {};
      }
      default:
        throw new McpError(ErrorCode.MethodNotFound, "Method not found");
    }
  }

  /** Sends a notification of the agent's (roots changed, …) to every server. */
  async notifyAll(notification: Notification): Promise<void> {
    await Promise.all(this.upstreams.map(({ client }) => client?.notification(notification).catch(() => {})));
  }

  private offering(capability: keyof ServerCapabilities): Upstream[] {
    return this.upstreams.filter(({ client }) => client?.getServerCapabilities()?.[capability] !== undefined);
  }

  /**
   * One page of a merged list: the first page asks every server that offers the list, a later page
   * only those with more to give, each with its own cursor (carried together in the gateway's cursor).
   */
  private async list(request: Outgoing, list: (typeof LISTS)[string], options: RequestOptions): Promise<Record<string, unknown>> {
    const { cursor, ...params } = request.params ?? {};
    const offering = this.offering(list.capability);
    let asks: Array<[Upstream, string | undefined]>;
    if (cursor === undefined) {
      if (offering.length === 0) throw new McpError(ErrorCode.MethodNotFound, "Method not found");
      asks = offering.map((upstream) => [upstream, undefined]);
    } else {
      const cursors = decodeCursor(cursor);
      asks = Object.entries(cursors).map(([name, own]) => {
        const upstream = this.byName.get(name);
        if (upstream === undefined) throw new McpError(ErrorCode.InvalidParams, "Invalid cursor");
        return [upstream, own];
      });
    }
    const pages = await Promise.all(
      asks.map(async ([upstream, own]) => ({ upstream, page: await send(upstream, { method: request.method, params: { ...params, ...(own !== undefined && { cursor: own }) } }, options) })),
    );
    const items: unknown[] = [];
    const next: Record<string, string> = {};
    for (const { upstream, page } of pages) {
      for (const item of (page[list.key] ?? []) as Array<Record<string, unknown>>) items.push(this.exposed(upstream, list, item));
      if (typeof page.nextCursor === "string") next[upstream.name] = page.nextCursor;
    }
    return { [list.key]: items, ...(Object.keys(next).length > 0 && { nextCursor: encodeCursor(next) }) };
  }

  /** An item of a server's list as the agent sees it: names prefixed; resources as they are, their server noted. */
  private exposed(upstream: Upstream, list: (typeof LISTS)[string], item: Record<string, unknown>): Record<string, unknown> {
    if (list.rename === "name") return { ...item, name: `${upstream.name}${UPSTREAM_SEPARATOR}${String(item.name)}` };
    if (typeof item.uri === "string") this.owners.set(item.uri, (this.owners.get(item.uri) ?? new Set()).add(upstream.name));
    if (typeof item.uriTemplate === "string") {
      let entry = this.templates.get(item.uriTemplate);
      if (entry === undefined) {
        let template: UriTemplate | undefined;
        try {
          template = new UriTemplate(item.uriTemplate);
        } catch {
          // A template the SDK cannot parse still routes completions by its exact text.
        }
        entry = { names: new Set(), template };
        this.templates.set(item.uriTemplate, entry);
      }
      entry.names.add(upstream.name);
    }
    return item;
  }

  /**
   * The server a resource URI (or a template, for completion) belongs to: the only one offering
   * resources; else the one that listed it; else the one whose template matches it. Unknown, the
   * servers' lists are read in full once (again after a `list_changed`) before giving up.
   */
  private async route(uri: string, kind: "uri" | "template", options: RequestOptions): Promise<Upstream> {
    const offering = this.offering("resources");
    if (offering.length === 0) throw new McpError(ErrorCode.MethodNotFound, "Method not found");
    if (offering.length === 1) return offering[0]!;
    let found = this.lookup(uri, kind);
    if (found.length === 0 && !this.discovered) {
      await this.discover(offering, options);
      found = this.lookup(uri, kind);
    }
    if (found.length === 1) return this.byName.get(found[0]!)!;
    if (found.length > 1) throw new McpError(ErrorCode.InvalidParams, `Resource ${uri} is offered by several servers (${found.join(", ")}): the gateway cannot tell which to ask`);
    throw new McpError(kind === "uri" ? RESOURCE_NOT_FOUND : ErrorCode.InvalidParams, `Resource ${uri} not found`, { uri });
  }

  private lookup(uri: string, kind: "uri" | "template"): string[] {
    if (kind === "template") return [...(this.templates.get(uri)?.names ?? [])];
    const listed = this.owners.get(uri);
    if (listed !== undefined) return [...listed];
    const matching = new Set<string>();
    for (const { names, template } of this.templates.values()) if (template?.match(uri)) for (const name of names) matching.add(name);
    return [...matching];
  }

  /** Reads every page of every server's resources and templates, to learn who owns what. */
  private async discover(offering: Upstream[], options: RequestOptions): Promise<void> {
    this.owners.clear();
    this.templates.clear();
    await Promise.all(
      offering.flatMap((upstream) =>
        (["resources/list", "resources/templates/list"] as const).map(async (method) => {
          const list = LISTS[method]!;
          let cursor: string | undefined;
          let pages = 0;
          do {
            const page = await send(upstream, { method, ...(cursor !== undefined && { params: { cursor } }) }, options).catch(() => ({}) as Record<string, unknown>);
            for (const item of (page[list.key] ?? []) as Array<Record<string, unknown>>) this.exposed(upstream, list, item);
            cursor = typeof page.nextCursor === "string" ? page.nextCursor : undefined;
          } while (cursor !== undefined && ++pages < MAX_DISCOVERY_PAGES);
        }),
      ),
    );
    this.discovered = true;
  }
}

function send(upstream: Upstream, request: Outgoing, options: RequestOptions): Promise<Record<string, unknown>> {
  const { client } = upstream;
  if (client === undefined) throw new McpError(ErrorCode.InvalidRequest, "the gateway is not initialized");
  return client.request({ method: request.method, ...(request.params !== undefined && { params: request.params }) }, ResultSchema, options);
}

/** The gateway's cursor: each server that has more, with its own cursor, as opaque text. */
function encodeCursor(cursors: Record<string, string>): string {
  return Buffer.from(JSON.stringify(cursors)).toString("base64url");
}

function decodeCursor(cursor: unknown): Record<string, string> {
  try {
    const value: unknown = JSON.parse(Buffer.from(String(cursor), "base64url").toString("utf8"));
    if (typeof value === "object" && value !== null && !Array.isArray(value) && Object.values(value).every((own) => typeof own === "string")) return value as Record<string, string>;
  } catch {
    // Not one of the gateway's cursors.
  }
  throw new McpError(ErrorCode.InvalidParams, "Invalid cursor");
}

/** Deep union of capability objects: objects merged, a `true` flag wins. */
function mergeInto(target: Record<string, unknown>, source: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(source)) {
    const existing = target[key];
    if (isObject(value)) {
      const into = isObject(existing) ? existing : {};
      mergeInto(into, value);
      target[key] = into;
    } else if (value === true || existing === undefined) target[key] = value;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
