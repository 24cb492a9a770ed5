// Ledger verification and evidence from the CLI. Local verification opens the store read-only: it
// never writes, and never signs a checkpoint over what it reads.
import { readFileSync, writeFileSync } from "node:fs";
import { Command, CommanderError, Option } from "commander";
import { parseEvidenceFile, verifyEvidence } from "../ledger/evidence.js";
import type { LedgerVerification } from "../ledger/ledger.js";
import { openLedger } from "../ledger/open.js";
import { rotateLedgerKey } from "../ledger/keyring.js";
import type { WitnessCheck } from "../ledger/witnessed.js";
import { fetchWitnessedCheckpoint } from "../ledger/witnessing.js";
import { remoteOperator, type LedgerCheck } from "./operator.js";

interface GlobalOptions {
  store: string;
  json: boolean;
  url?: string;
  apiKey?: string;
}

const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

function print(program: Command, value: unknown, text: () => string): void {
  if (program.opts<GlobalOptions>().json) console.log(JSON.stringify(value, null, 2));
  else console.log(text());
}

const positiveInt = (value: string): number => {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new CommanderError(EXIT_USAGE, "warden.number", `"${value}" is not a positive integer`);
  return n;
};

/** One line on what a local verification proved and against which key. */
export function describeVerification(result: LedgerVerification | LedgerCheck): string {
  const keyNote = "key" in result && result.key !== undefined ? ` Checkpoints checked against key ${result.key.keyId}${result.key.source === "store" ? " read from beside the store (whoever can rewrite the store can usually replace it: pass --public-key)" : result.key.source === "supplied" ? " (supplied)" : " (configured)"}.` : "";
  const coverage = "coverage" in result && result.coverage !== undefined ? ` Signed up to entry ${result.coverage.coveredTo}; ${result.coverage.uncovered} after it covered by no signature.` : "";
  const witnesses = "witnesses" in result && result.witnesses !== undefined ? result.witnesses.map((w) => `\n  witness ${w.witness}: ${w.holds ? `holds (${w.heads} cosigned head${w.heads === 1 ? "" : "s"}, newest of ${w.newest} entries)` : `FAILS: ${w.problem}`}`).join("") : "";
  // A control plane with witnesses says how far they hold cosigned heads.
  const witnessed = "witnessed" in result && result.witnessed !== undefined ? ` Witnessed up to entry ${result.witnessed.upTo}${result.witnessed.head ? " (the head)" : `: the head (entry ${result.entries}) is not witnessed yet`}.` : "";
  if (result.ok) return `ledger OK: ${result.entries} entries, ${result.checkpoints} signed checkpoints${result.head ? `, head ${result.head.hash.slice(0, 16)}…` : ""}.${coverage}${keyNote}${witnessed}${witnesses}`;
  if ("reason" in result && (result.reason === "uncovered" || result.reason === "unwitnessed")) return `ledger NOT VERIFIED (${result.reason}): ${result.problem}.${coverage}${keyNote}${witnesses}`;
  if (witnesses !== "") return `ledger BROKEN: ${result.problem}.${keyNote}${witnesses}`;
  return result.firstBadSeq === undefined ? `ledger BROKEN: ${result.problem}` : `ledger BROKEN at entry ${result.firstBadSeq}: ${result.problem} (${result.entries} entries verified before it).${keyNote}`;
}

/** `warden ledger verify`: read-only against the store, or the control plane's report with --url. */
export function registerLedgerVerifyCommand(program: Command, ledger: Command): void {
  ledger
    .command("verify")
    .description("recompute the hashes and check the signed checkpoints after where the last verification ended (read-only: never signs)")
    .option("--public-key <key>", "the checkpoint key's public half, from outside the store: PEM, a PEM file or base64 raw key; repeatable after key rotations (current last)", collect, [])
    .option("--checkpoint-every <n>", "unsigned entries tolerated after the last checkpoint", positiveInt, 1000)
    .option("--witness <url|key>", "a witness the ledger must match: its URL (its last cosigned head is fetched) or its verifier key (the cosignatures kept on the checkpoints are checked); repeatable (reads every entry)", collect, [])
    .option("--full", "re-hash every entry from the first, not only those after the last verified checkpoint")
    .action(async (opts: { publicKey: string[]; checkpointEvery: number; witness: string[]; full?: boolean }) => {
      const { url, apiKey, store } = program.opts<GlobalOptions>();
      let result: LedgerVerification | LedgerCheck;
      if (url) {
        if (!apiKey) throw new CommanderError(EXIT_USAGE, "warden.apiKey", "--url needs --api-key (or WARDEN_API_KEY)");
        if (opts.witness.length > 0) throw new CommanderError(EXIT_USAGE, "warden.witness", "--witness checks a local store: use it without --url");
        result = await remoteOperator(url, apiKey).verifyLedger();
      } else {
        const { ledger: opened, close } = openLedger(store, { publicKey: keysOf(opts.publicKey), checkpointEvery: opts.checkpointEvery });
        try {
          const witnesses: WitnessCheck[] = [];
          for (const witness of opts.witness) witnesses.push(/^https?:\/\//.test(witness) ? await fetchWitnessedCheckpoint(witness, opened.origin()) : witness);
          result = opened.verify({ witnesses, full: opts.full === true });
        } finally {
          close();
        }
      }
      print(program, result, () => describeVerification(result));
      if (!result.ok) process.exitCode = EXIT_FAILURE;
    });
  registerRotateKeyCommand(program, ledger);
  ledger
    .command("key")
    .description("print the ledger's verifier key (publish it; witnesses are configured with it)")
    .option("--public-key <key>", "the checkpoint key's public half, if not the one beside the store")
    .action((opts: { publicKey?: string }) => {
      const { ledger: opened, close } = openLedger(program.opts<GlobalOptions>().store, { publicKey: opts.publicKey });
      try {
        const value = { origin: opened.origin(), verifierKey: opened.verifierKey() };
        print(program, value, () => value.verifierKey);
      } finally {
        close();
      }
    });
}

/** `warden ledger rotate-key`: the current key signs over an entry naming the next; run it while no agent writes. */
function registerRotateKeyCommand(program: Command, ledger: Command): void {
  ledger
    .command("rotate-key")
    .description("hand checkpoint signing over to a new key (old checkpoints stay verifiable; run while no agent writes the store)")
    .addOption(new Option("--key-file <path>", "the current private key (default: keys/ledger.pem beside the store)").env("WARDEN_LEDGER_KEY"))
    .option("--new-key-file <path>", "write the new private key here (created if absent) instead of replacing the current key file")
    .action((opts: { keyFile?: string; newKeyFile?: string }) => {
      const { store, org, actor } = program.opts<GlobalOptions & { org: string; actor: string }>();
      const rotation = rotateLedgerKey(store, { keyFile: opts.keyFile, newKeyFile: opts.newKeyFile, org, actor });
      print(program, rotation, () => [
        `ledger key rotated: ${rotation.previousKeyId} -> ${rotation.keyId} (handover recorded at entry ${rotation.seq}, signed by the old key)`,
        `new private key: ${rotation.keyFile}; old public key kept at ${rotation.retiredFile}`,
        `new verifier key (publish it; witnesses follow it as a new log):\n  ${rotation.verifierKey}`,
      ].join("\n"));
    });
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];
const keysOf = (keys: string[]): string[] | undefined => (keys.length === 0 ? undefined : keys);

/** Verifies a bundle file offline and prints what it proves, or each failure with its code. */
async function verifyBundleFile(program: Command, file: string, opts: { publicKey: string[]; witness: string[] }): Promise<void> {
  const result = await verifyEvidence(parseEvidenceFile(readFileSync(file, "utf8"), file), { publicKey: keysOf(opts.publicKey), witnesses: opts.witness });
  print(program, result, () => {
    if (result.ok) return `VERIFIED: ${result.statement}`;
    const more = result.failures.slice(1).map((f) => `\n  also (${f.code}): ${f.problem}`).join("");
    return `NOT VERIFIED (${result.code}): ${result.problem}${more}`;
  });
  if (!result.ok) process.exitCode = EXIT_FAILURE;
}

/**
 * `warden evidence <runId|toolCallId> [-o file]` writes an evidence bundle (read-only against the store);
 * `warden evidence verify <file>` verifies one offline and prints what it proves, or what fails.
 */
export function registerEvidenceCommands(program: Command): void {
  program
    .command("evidence")
    .description("an evidence bundle for one run or tool call; `evidence verify <file>` checks one offline")
    .argument("<id>", "a run id or tool call id (or `verify`)")
    .argument("[file]", "with `verify`: the bundle to check")
    .option("-o, --out <file>", "write the bundle here (default: stdout)")
    .option("--public-key <key>", "the checkpoint key's public half, obtained out of band: PEM, a PEM file or base64 raw key; repeatable after key rotations", collect, [])
    .option("--checkpoint-every <n>", "unsigned entries tolerated after the last checkpoint", positiveInt, 1000)
    .option("--witness <key>", "with `verify`: a witness verifier key whose cosignature the checkpoint must carry; repeatable", collect, [])
    .action(async (id: string, file: string | undefined, opts: { out?: string; publicKey: string[]; checkpointEvery: number; witness: string[] }) => {
      if (id === "verify") {
        if (!file) throw new CommanderError(EXIT_USAGE, "warden.file", "evidence verify needs the bundle file");
        await verifyBundleFile(program, file, opts);
        return;
      }
      const { ledger, close } = openLedger(program.opts<GlobalOptions>().store, { publicKey: keysOf(opts.publicKey), checkpointEvery: opts.checkpointEvery });
      try {
        const bundle = ledger.evidence(id);
        const text = `${JSON.stringify(bundle, null, 2)}\n`;
        if (opts.out) {
          writeFileSync(opts.out, text);
          console.error(`wrote evidence for ${bundle.subject.kind} ${id} (${bundle.entries.length} entries) to ${opts.out}`);
        } else process.stdout.write(text);
      } finally {
        close();
      }
    });
}

/** `warden verify <file>`: an evidence bundle verified offline (the same as `warden evidence verify <file>`). */
export function registerVerifyCommand(program: Command): void {
  program
    .command("verify")
    .description("verify an evidence bundle offline: prints what it proves, or each failure with its code")
    .argument("<file>", "the bundle (from `warden evidence <id> -o file`)")
    .option("--public-key <key>", "the checkpoint key's public half, obtained out of band: PEM, a PEM file or base64 raw key; repeatable after key rotations", collect, [])
    .option("--witness <key>", "a witness verifier key whose cosignature the checkpoint must carry; repeatable", collect, [])
    .action((file: string, opts: { publicKey: string[]; witness: string[] }) => verifyBundleFile(program, file, opts));
}
