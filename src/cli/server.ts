import { Command, CommanderError, Option } from "commander";
import { loadApprovalChannels, type ApprovalChannelsOptions } from "../approvals/channels/index.js";
import { bareMessage } from "../server/errors.js";
import { describeDatabase } from "../server/postgres-store.js";
import { SqliteControlPlaneStore, assertOrg } from "../server/sqlite-store.js";
import { ROLES, type ApiKeyRecord, type Role } from "../server/store.js";

const EXIT_USAGE = 2;

interface GlobalOptions {
  org: string;
  json: boolean;
  actor: string;
}

function print(program: Command, value: unknown, text: () => string): void {
  if (program.opts<GlobalOptions>().json) console.log(JSON.stringify(value, null, 2));
  else console.log(text());
}

function org(program: Command): string {
  const value = program.opts<GlobalOptions>().org;
  try {
    assertOrg(value);
  } catch (error) {
    throw new CommanderError(EXIT_USAGE, "warden.org", bareMessage(error));
  }
  return value;
}

async function withStore<T>(db: string, fn: (store: SqliteControlPlaneStore) => Promise<T>): Promise<T> {
  const store = new SqliteControlPlaneStore({ path: db });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

const describeKey = (k: ApiKeyRecord) =>
  `${k.keyId}  ${k.role.padEnd(8)} ${k.prefix}…  ${k.name ?? ""}${k.agentId ? `  agent=${k.agentId}` : ""}${k.revokedAt ? `  REVOKED ${new Date(k.revokedAt).toISOString()}` : ""}`;

const dbOption = () => new Option("--db <path>", "control plane database (SQLite)").env("WARDEN_SERVER_DB").default("./warden.db");

/** The verifier key a witness gives at `<url>/key`. */
async function witnessKeyAt(url: string): Promise<string> {
  const response = await fetch(`${url}/key`, { signal: AbortSignal.timeout(10_000) });
  if (!response.ok) throw new Error(`it did not give its key (${response.status})`);
  return (await response.text()).trim();
}

/**
 * `warden serve` (the control plane) and `warden keys create|list|revoke` (API keys, on the
 * database directly). The organization is the global `--org`.
 */
export function registerServerCommands(program: Command): void {
  program
    .command("serve")
    .description("run the control plane: HTTP API, event stream, API keys (prints an admin key on first start)")
    .addOption(new Option("--port <n>", "port to listen on").env("WARDEN_PORT").default("4000"))
    .option("--host <address>", "address to listen on (0.0.0.0 to serve other machines)", "127.0.0.1")
    .option("--trust-proxy <hops>", "behind a TLS-terminating proxy: how many hops to trust for X-Forwarded-* (marks the console's cookie Secure)")
    .addOption(dbOption())
    .addOption(new Option("--database <url>", "PostgreSQL instead of SQLite (postgres://user:password@host:port/db): several replicas can share it").env("WARDEN_DATABASE_URL"))
    .addOption(new Option("--channels <file>", "approval channels (webhooks, Slack, one-time links) from a YAML or JSON file; ${VAR} reads the environment").env("WARDEN_CHANNELS"))
    .option("--witness <url[=key]>", "an outside witness (warden witness) asked to cosign each organization's checkpoints: its URL, and its verifier key after = (without it, the key the witness gives at /key is taken and printed to pin); repeatable", (value: string, previous: string[]) => [...previous, value], [])
    .action(async (opts: { port: string; host: string; db: string; database?: string; trustProxy?: string; channels?: string; witness: string[] }) => {
      const port = Number(opts.port);
      if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new CommanderError(EXIT_USAGE, "warden.port", `invalid port "${opts.port}"`);
      const organization = org(program);
      // Express is loaded only here, so the rest of the CLI runs without it.
      const { createWardenServer, ensureAdminKey } = await import("../server/app.js");
      const trustProxy = opts.trustProxy === undefined ? undefined : /^\d+$/.test(opts.trustProxy) ? Number(opts.trustProxy) : opts.trustProxy;
      let channels: ApprovalChannelsOptions | undefined;
      try {
        channels = opts.channels === undefined ? undefined : loadApprovalChannels(opts.channels);
      } catch (error) {
        throw new CommanderError(EXIT_USAGE, "warden.channels", bareMessage(error));
      }
      const witnesses: Array<{ url: string; key: string }> = [];
      for (const spec of opts.witness) {
        const split = spec.indexOf("=");
        const url = (split < 0 ? spec : spec.slice(0, split)).replace(/\/+$/, "");
        try {
          const key = split < 0 ? await witnessKeyAt(url) : spec.slice(split + 1);
          if (split < 0) console.log(`witness ${url} gave its key (pin it: --witness ${url}=${key})`);
          witnesses.push({ url, key });
        } catch (error) {
          throw new CommanderError(EXIT_USAGE, "warden.witness", `witness ${url}: ${bareMessage(error)}`);
        }
      }
      let server: Awaited<ReturnType<typeof createWardenServer>>;
      try {
        server = createWardenServer({ db: opts.db, database: opts.database, trustProxy, channels, witnesses });
      } catch (error) {
        throw new CommanderError(EXIT_USAGE, "warden.witness", bareMessage(error));
      }
      let key: string | undefined;
      try {
        // Reaches the database (and migrates it) before listening: a wrong URL fails here, naming host and port.
        await server.store.ping();
        key = await ensureAdminKey(server.store, organization);
      } catch (error) {
        await server.close().catch(() => {});
        throw new CommanderError(1, "warden.database", `cannot start the control plane: ${bareMessage(error)}`);
      }
      let url: string;
      try {
        ({ url } = await server.listen(port, opts.host));
      } catch (error) {
        await server.close().catch(() => {});
        const code = (error as NodeJS.ErrnoException).code;
        if (code === "EADDRINUSE") throw new CommanderError(1, "warden.port", `port ${port} on ${opts.host} is already in use (another warden serve?): stop what listens there, or pick another with --port`);
        if (code === "EACCES") throw new CommanderError(1, "warden.port", `not allowed to listen on port ${port} of ${opts.host}: pick a port above 1023 with --port`);
        if (code === "EADDRNOTAVAIL") throw new CommanderError(1, "warden.port", `${opts.host} is not an address of this machine: pass --host 127.0.0.1 or 0.0.0.0`);
        throw error;
      }
      console.log(`warden control plane on ${url} (database ${opts.database === undefined ? opts.db : describeDatabase(opts.database)}); console at ${url}/`);
      if (key) console.log(`admin key for organization "${organization}" — shown once, store it now:\n  ${key}`);
      // An organization with no policy version lets its agents do anything: say how to publish one.
      if ((await server.store.currentPolicy(organization)).version === 0) {
        const db = opts.database === undefined ? ` --db ${opts.db}` : "";
        console.log(
          [
            `no policy published for organization "${organization}" yet: its agents allow every call. Publish one with`,
            `  warden policy push warden.yaml --url ${url} --api-key <admin key>`,
            `and give each agent a key of the same organization:`,
            `  warden keys create --role agent --org ${organization}${db} --name billing-bot`,
          ].join("\n"),
        );
      }
      await new Promise<void>((resolve) => {
        process.once("SIGINT", resolve);
        process.once("SIGTERM", resolve);
      });
      await server.close();
    });

  const keys = program.command("keys").description("API keys of the control plane (on its database)");
  keys
    .command("create")
    .description("create an API key for the organization (--org); the key is shown once")
    .addOption(new Option("--role <role>", "what the key may do").choices(ROLES).makeOptionMandatory())
    .option("--name <name>", "who or what holds it")
    .option("--agent <id>", "bind the key to one agent")
    .option("--group <name...>", "groups its holder belongs to, for group:<name> in a policy's approval.from")
    .addOption(dbOption())
    .action(async (opts: { role: Role; name?: string; agent?: string; group?: string[]; db: string }) => {
      const organization = org(program);
      await withStore(opts.db, async (store) => {
        const { key, record } = await store.createKey({ org: organization, role: opts.role, name: opts.name, agentId: opts.agent, groups: opts.group, actor: program.opts<GlobalOptions>().actor });
        print(program, { key, ...record }, () => `${key}\n(${record.keyId}, ${record.role} of "${record.org}"; shown once)`);
      });
    });
  keys
    .command("list")
    .description("list the organization's keys (never their secrets)")
    .addOption(dbOption())
    .action(async (opts: { db: string }) => {
      const organization = org(program);
      await withStore(opts.db, async (store) => {
        const list = await store.listKeys(organization);
        print(program, list, () => (list.length === 0 ? `no keys for "${organization}"` : list.map(describeKey).join("\n")));
      });
    });
  keys
    .command("revoke <keyId>")
    .description("revoke a key: it stops working at once")
    .addOption(dbOption())
    .action(async (keyId: string, opts: { db: string }) => {
      const organization = org(program);
      await withStore(opts.db, async (store) => {
        const record = await store.revokeKey(organization, keyId, program.opts<GlobalOptions>().actor);
        print(program, record, () => `revoked ${record.keyId}`);
      });
    });
}
