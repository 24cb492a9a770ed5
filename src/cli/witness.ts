// `warden witness`: a transparency-log witness for Warden ledgers, as its own small process.
import { readFileSync } from "node:fs";
import { Command, CommanderError, Option } from "commander";
import { bareMessage } from "../server/errors.js";
import { startWitness } from "../ledger/witness-server.js";

const EXIT_USAGE = 2;

const collect = (value: string, previous: string[]): string[] => [...previous, value];

export function registerWitnessCommand(program: Command): void {
  program
    .command("witness")
    .description("run a witness: cosigns ledger checkpoints that extend what it saw before (C2SP tlog-witness), refuses rewritten or rolled-back histories")
    .requiredOption("--name <name>", "the witness's name, a schema-less URL (witness.example.com/w1)")
    .addOption(new Option("--key-file <path>", "Ed25519 private key (PEM), created with 0600 permissions if absent").env("WARDEN_WITNESS_KEY_FILE").makeOptionMandatory())
    .option("--log <verifier key>", "a log to cosign (`warden ledger key`, `GET /v1/ledger/key`); repeatable", collect, [])
    .option("--logs <file>", "a file of log verifier keys, one a line")
    .addOption(new Option("--state <path>", "SQLite file keeping the last cosigned head of each log").env("WARDEN_WITNESS_STATE").default("./witness.db"))
    .addOption(new Option("--port <n>", "port to listen on").env("WARDEN_WITNESS_PORT").default("4100"))
    .option("--host <address>", "address to listen on (0.0.0.0 to serve other machines)", "127.0.0.1")
    .action(async (opts: { name: string; keyFile: string; log: string[]; logs?: string; state: string; port: string; host: string }) => {
      const port = Number(opts.port);
      if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new CommanderError(EXIT_USAGE, "warden.port", `invalid port "${opts.port}"`);
      const logs = [...opts.log, ...(opts.logs === undefined ? [] : readFileSync(opts.logs, "utf8").split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#")))];
      let running;
      try {
        running = await startWitness({ name: opts.name, keyFile: opts.keyFile, logs, state: opts.state, port, host: opts.host });
      } catch (error) {
        throw new CommanderError((error as NodeJS.ErrnoException).code === "EADDRINUSE" ? 1 : EXIT_USAGE, "warden.witness", `cannot start the witness: ${bareMessage(error)}`);
      }
      console.log(`warden witness ${opts.name} on ${running.url}, cosigning ${logs.length} log${logs.length === 1 ? "" : "s"} (state ${opts.state})`);
      console.log(`witness key (configure it beside the URL in ledger.witnesses, and give it to auditors):\n  ${running.witness.verifierKey()}`);
      await new Promise<void>((resolve) => {
        process.once("SIGINT", resolve);
        process.once("SIGTERM", resolve);
      });
      await running.close();
    });
}
