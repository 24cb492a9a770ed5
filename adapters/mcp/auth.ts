import { createPublicKey, verify as verifySignature, type KeyObject } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AuthInfo } from "@modelcontextprotocol/sdk/server/auth/types.js";
import { z } from "zod";
import { hasPermission, inspectToken, type Authority, type Warden } from "agent-warden";

/**
 * The gateway as an OAuth 2.1 resource server (MCP authorization spec): which tokens it accepts and
 * which scope each tool needs.
 * @example
 * import { createMcpGatewayHttpHandler } from "agent-warden/mcp";
 * createMcpGatewayHttpHandler({ warden, upstream, auth: {
 *   resource: "https://gateway.example.com/mcp",
 *   authorizationServers: ["https://auth.example.com"],
 *   jwt: { issuer: "https://auth.example.com", jwksUri: "https://auth.example.com/.well-known/jwks.json" },
 *   scopes: { "crm.*": "crm:write", "search": "crm:read" },
 * } });
 */
export interface McpGatewayAuthOptions {
  /** This gateway's canonical URI (RFC 8707): the audience every JWT must name, and the `resource` of its metadata. */
  resource: string;
  /** The authorization servers' issuer URLs, named in the protected-resource metadata (RFC 9728). */
  authorizationServers: string[];
  /** JWTs from this issuer are accepted, verified against its JWKS (fetched once, again for an unknown `kid`). */
  jwt?: { issuer: string; jwksUri: string; algorithms?: Array<"EdDSA" | "ES256" | "RS256"> | undefined } | undefined;
  /** Warden delegation tokens signed by this organization are accepted too (their scopes are Warden permissions). Default true. */
  wardenTokens?: boolean | undefined;
  /** The scope a tool needs: a map from tool-name glob (`crm.*`) to scope, or a function. A call whose token lacks it gets 403 `insufficient_scope`. */
  scopes?: Record<string, string> | ((tool: string) => string | undefined) | undefined;
  /** Advertised in the metadata. Default: the scopes of `scopes` when it is a map. */
  scopesSupported?: string[] | undefined;
}

const JwtHeaderSchema = z.object({ alg: z.enum(["EdDSA", "ES256", "RS256"]), kid: z.string().optional(), typ: z.string().optional() });
const JwtPayloadSchema = z.looseObject({
  iss: z.string(),
  aud: z.union([z.string(), z.array(z.string())]),
  exp: z.number(),
  nbf: z.number().optional(),
  sub: z.string().optional(),
  client_id: z.string().optional(),
  azp: z.string().optional(),
  scope: z.string().optional(),
});
const JwksSchema = z.object({ keys: z.array(z.looseObject({ kty: z.string(), kid: z.string().optional() })) });

/** The outcome of reading a request's bearer token. */
type Authenticated = { ok: true; auth: AuthInfo } | { ok: false; status: 401; error: "invalid_token" | undefined; description: string };

/**
 * The resource-server side of the HTTP gateway: serves the protected-resource metadata, answers 401
 * with `resource_metadata` for a missing or bad token and 403 `insufficient_scope` (naming the scope)
 * for a tool the token does not cover. The agent's token never goes further than the gateway.
 * @internal
 */
export function createResourceServer(warden: Warden, options: McpGatewayAuthOptions) {
  const resource = new URL(options.resource);
  const metadataPath = `/.well-known/oauth-protected-resource${resource.pathname === "/" ? "" : resource.pathname}`;
  const metadataUrl = new URL(metadataPath, resource).href;
  const scopeOf = typeof options.scopes === "function" ? options.scopes : scopeMap(options.scopes ?? {});
  const supported = options.scopesSupported ?? (typeof options.scopes === "object" ? [...new Set(Object.values(options.scopes))] : undefined);
  const keys = options.jwt ? new JwksCache(options.jwt.jwksUri) : undefined;

  const metadata = {
    resource: options.resource,
    authorization_servers: options.authorizationServers,
    bearer_methods_supported: ["header"],
    ...(supported !== undefined && { scopes_supported: supported }),
  };

  async function authenticate(request: IncomingMessage): Promise<Authenticated> {
    const header = request.headers.authorization;
    const match = header === undefined ? null : /^Bearer\s+(\S+)$/i.exec(header);
    if (match === null) return { ok: false, status: 401, error: undefined, description: "a bearer token is required" };
    const token = match[1]!;
    if (options.wardenTokens !== false && looksLikeWardenToken(token)) {
      try {
        const verified = warden.tokens.verify(token);
        return { ok: true, auth: { token, clientId: verified.authority.agentId ?? "", scopes: verified.authority.scopes ?? [], expiresAt: Math.floor(verified.expiresAt / 1000), extra: { authority: verified.authority } } };
      } catch (error) {
        return { ok: false, status: 401, error: "invalid_token", description: (error as Error).message };
      }
    }
    if (keys === undefined || options.jwt === undefined) return { ok: false, status: 401, error: "invalid_token", description: "token not accepted" };
    const verified = await verifyJwt(token, keys, options.jwt, options.resource);
    if (typeof verified === "string") return { ok: false, status: 401, error: "invalid_token", description: verified };
    const clientId = verified.client_id ?? verified.azp ?? verified.sub ?? "";
    return { ok: true, auth: { token, clientId, scopes: verified.scope?.split(" ").filter(Boolean) ?? [], expiresAt: verified.exp, resource, extra: { iss: verified.iss, sub: verified.sub } } };
  }

  /** The first tool of the message(s) whose scope the token lacks. */
  function missingScope(auth: AuthInfo, body: unknown): string | undefined {
    const messages = Array.isArray(body) ? body : [body];
    for (const message of messages) {
      const call = message as { method?: unknown; params?: { name?: unknown } };
      if (call?.method !== "tools/call" || typeof call.params?.name !== "string") continue;
      // The gateway's own map, then the `scope` of each policy naming the tool.
      const option = scopeOf(call.params.name);
      const scopes = option === undefined ? warden.requiredScopes(call.params.name) : [option, ...warden.requiredScopes(call.params.name)];
      const authority = auth.extra?.authority as Authority | undefined;
      for (const scope of scopes) {
        const granted = authority !== undefined ? hasPermission(authority, scope) : auth.scopes.includes(scope);
        if (!granted) return scope;
      }
    }
    return undefined;
  }

  return {
    metadataPath,
    /** Serves the metadata; true when it answered. */
    serveMetadata(request: IncomingMessage, response: ServerResponse): boolean {
      const pathname = new URL(request.url ?? "/", "http://gateway").pathname;
      if (pathname !== metadataPath && pathname !== "/.well-known/oauth-protected-resource") return false;
      response.writeHead(200, { "content-type": "application/json", "cache-control": "max-age=3600" }).end(JSON.stringify(metadata));
      return true;
    },
    /** The caller's `AuthInfo`, or false once it has answered 401/403 itself. */
    async check(request: IncomingMessage, response: ServerResponse, body: unknown): Promise<AuthInfo | false> {
      const result = await authenticate(request);
      if (!result.ok) {
        const error = result.error === undefined ? "" : `, error="${result.error}", error_description="${quoted(result.description)}"`;
        challenge(response, 401, `Bearer resource_metadata="${metadataUrl}"${error}`, result.description);
        return false;
      }
      const scope = missingScope(result.auth, body);
      if (scope !== undefined) {
        challenge(response, 403, `Bearer error="insufficient_scope", scope="${quoted(scope)}", resource_metadata="${metadataUrl}", error_description="this tool needs the ${quoted(scope)} scope"`, `insufficient_scope: ${scope}`);
        return false;
      }
      return result.auth;
    },
  };
}

function challenge(response: ServerResponse, status: number, header: string, message: string): void {
  response.writeHead(status, { "content-type": "application/json", "www-authenticate": header }).end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32000, message }, id: null }));
}

function quoted(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"');
}

function looksLikeWardenToken(token: string): boolean {
  try {
    inspectToken(token);
    return true;
  } catch {
    return false;
  }
}

function scopeMap(map: Record<string, string>): (tool: string) => string | undefined {
  const entries = Object.entries(map).map(([glob, scope]) => ({ pattern: new RegExp(`^${glob.split("*").map(escapeRegExp).join(".*")}$`), scope }));
  return (tool) => entries.find((entry) => entry.pattern.test(tool))?.scope;
}

function escapeRegExp(value: string): string {
  return value.replace(/[.+?^${}()|[\]\\]/g, "\\$&");
}

/** A JWKS, fetched on first use and again (at most once a minute) when a token names a key it does not hold. */
class JwksCache {
  readonly #uri: string;
  #keys = new Map<string, KeyObject>();
  #fetchedAt = 0;
  #pending: Promise<void> | undefined;

  constructor(uri: string) {
    this.#uri = uri;
  }

  async key(kid: string | undefined): Promise<KeyObject | undefined> {
    const lookup = () => (kid === undefined ? (this.#keys.size === 1 ? [...this.#keys.values()][0] : undefined) : this.#keys.get(kid));
    if (lookup() === undefined && Date.now() - this.#fetchedAt > 60_000) await this.#refresh();
    return lookup();
  }

  #refresh(): Promise<void> {
    this.#pending ??= (async () => {
      try {
        const response = await fetch(this.#uri, { headers: { accept: "application/json" }, signal: AbortSignal.timeout(10_000) });
        if (!response.ok) return;
        const jwks = JwksSchema.parse(await response.json());
        const keys = new Map<string, KeyObject>();
        for (const jwk of jwks.keys) {
          try {
            keys.set(jwk.kid ?? "", createPublicKey({ key: jwk as import("node:crypto").JsonWebKey, format: "jwk" }));
          } catch {
            // A key this runtime cannot use is skipped; tokens signed with it do not verify.
          }
        }
        this.#keys = keys;
        this.#fetchedAt = Date.now();
      } catch {
        // Unreachable: tokens stay unverifiable (fail closed) until the next try.
      } finally {
        this.#pending = undefined;
      }
    })();
    return this.#pending;
  }
}

/** The token's claims once its signature, issuer, audience and lifetime check out; else why not. */
async function verifyJwt(token: string, keys: JwksCache, jwt: NonNullable<McpGatewayAuthOptions["jwt"]>, audience: string): Promise<z.infer<typeof JwtPayloadSchema> | string> {
  const parts = token.split(".");
  if (parts.length !== 3) return "malformed token";
  let header: z.infer<typeof JwtHeaderSchema>;
  let payload: z.infer<typeof JwtPayloadSchema>;
  try {
    header = JwtHeaderSchema.parse(JSON.parse(Buffer.from(parts[0]!, "base64url").toString()));
    payload = JwtPayloadSchema.parse(JSON.parse(Buffer.from(parts[1]!, "base64url").toString()));
  } catch {
    return "malformed token";
  }
  if (jwt.algorithms !== undefined && !jwt.algorithms.includes(header.alg)) return `algorithm ${header.alg} not accepted`;
  const key = await keys.key(header.kid);
  if (key === undefined) return "unknown signing key";
  const data = Buffer.from(`${parts[0]}.${parts[1]}`);
  const signature = Buffer.from(parts[2]!, "base64url");
  const valid =
    header.alg === "EdDSA" ? key.asymmetricKeyType === "ed25519" && verifySignature(null, data, key, signature)
    : header.alg === "ES256" ? key.asymmetricKeyType === "ec" && verifySignature("sha256", data, { key, dsaEncoding: "ieee-p1363" }, signature)
    : key.asymmetricKeyType === "rsa" && verifySignature("sha256", data, key, signature);
  if (!valid) return "bad signature";
  if (payload.iss !== jwt.issuer) return "wrong issuer";
  const audiences = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
  if (!audiences.includes(audience)) return "wrong audience";
  const now = Math.floor(Date.now() / 1000);
  if (payload.exp <= now) return "token expired";
  if (payload.nbf !== undefined && payload.nbf > now + 60) return "token not yet valid";
  return payload;
}
