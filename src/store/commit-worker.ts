// The store's writer thread: it owns the write connection and commits what the client thread hands it,
// chaining and hashing ledger entries and signing checkpoints here, off the agent's event loop. Every
// message is acknowledged through the shared counters once its transaction has committed (or failed
// and been reported), which is what the client's `flush()` waits for.
import { parentPort, receiveMessageOnPort, workerData } from "node:worker_threads";
import { SqliteStore } from "./sqlite-store.js";
import { ACK_MESSAGES, ACK_OPS, decodeBatch, type CommitMessage, type WriterData } from "./commit-link.js";

const data = workerData as WriterData;
const shared = new Int32Array(data.shared);
const sqls: string[] = [];

function report(error: unknown): void {
  const cause = error as Error;
  parentPort!.postMessage({ error: { name: cause?.name ?? "Error", message: cause?.message ?? String(error) } });
}

let store: SqliteStore | undefined;
try {
  store = new SqliteStore({ path: data.path, signer: data.signer, checkpointEvery: data.checkpointEvery, checkpointIntervalMs: data.checkpointIntervalMs, maxBatch: Number.MAX_SAFE_INTEGER, writer: "inline", fold: false, onError: report });
} catch (error) {
  report(error);
}

/** Takes one message's writes into the store's queue; the number of writes and entries in it. */
function take(message: CommitMessage): number {
  if (message.kind !== "commit" && message.kind !== "batch") return 0;
  sqls.push(...message.defs);
  const [writes, drafts] = message.kind === "batch" ? decodeBatch(message) : [message.writes, message.drafts];
  if (store !== undefined) {
    for (const [id, params] of writes) store.write(sqls[id]!, params);
    for (const draft of drafts) store.append(draft);
  }
  return writes.length + drafts.length;
}

/**
 * How much batch text one transaction takes before the messages still waiting go to the next one. Without
 * a bound, a writer far behind took its whole backlog at once, and everything it held alive made each of
 * its scavenges copy megabytes (and its acknowledgements, which the client's back-pressure waits on, late).
 */
const GROUP_CHARS = 1 << 18;

/** The batch text (or its estimate) a message brings. */
const sizeOf = (message: CommitMessage): number => (message.kind === "batch" ? message.text.length : message.kind === "commit" ? (message.writes.length + message.drafts.length) * 512 : 0);

parentPort!.on("message", (first: CommitMessage) => {
  for (let next: CommitMessage | undefined = first; next !== undefined; next = receiveMessageOnPort(parentPort!)?.message as CommitMessage | undefined) commitGroup(next);
});

/** Commits `first` with the messages already waiting, up to GROUP_CHARS of them, in one transaction. */
function commitGroup(first: CommitMessage): void {
  // Messages already waiting join this one's transaction: the further behind, the larger the group, up to a bound.
  const messages = [first];
  let size = sizeOf(first);
  while (size < GROUP_CHARS) {
    const next = receiveMessageOnPort(parentPort!);
    if (next === undefined) break;
    messages.push(next.message as CommitMessage);
    size += sizeOf(next.message as CommitMessage);
  }
  let ops = 0;
  try {
    for (const message of messages) {
      if (message.kind === "commit" || message.kind === "batch") ops += take(message);
      else {
        // A checkpoint or close comes after what was handed over before it.
        store?.flush();
        if (message.kind === "checkpoint") store?.checkpointNow();
        else {
          store?.close();
          store = undefined;
        }
      }
    }
    store?.flush();
  } catch (error) {
    report(error);
  } finally {
    Atomics.add(shared, ACK_OPS, ops);
    Atomics.add(shared, ACK_MESSAGES, messages.length);
    Atomics.notify(shared, ACK_MESSAGES);
  }
}
