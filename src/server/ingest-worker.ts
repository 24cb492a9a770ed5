// The ingest writer thread (ingest-thread.ts): its own connection to the control plane's SQLite file,
// on which batches are written in the order they were handed over, those that waited for the thread
// together in one transaction (each answered only once it has committed).
import { parentPort, receiveMessageOnPort, workerData } from "node:worker_threads";
import type { WardenEvent } from "agent-warden";
import type { IngestReply, IngestRequest, IngestThreadData } from "./ingest-thread.js";
import type { Principal } from "./store.js";
import { SqliteControlPlaneStore } from "./sqlite-store.js";

const data = workerData as IngestThreadData;
const decoder = new TextDecoder();
const post = (reply: IngestReply) => parentPort!.postMessage(reply);
const store = new SqliteControlPlaneStore({
  path: data.path,
  ledgerSigningKey: data.ledgerSigningKey,
  checkpointEvery: data.checkpointEvery,
  checkpointIntervalMs: data.checkpointIntervalMs,
  onError: (error) => post({ id: 0, report: error instanceof Error ? error.message : String(error) }),
});

post({ id: 0, ready: true });

/** Batches written in one transaction at most, when that many wait. */
const GROUP = 8;

const fail = (id: number, error: unknown) => post({ id, error: { message: error instanceof Error ? error.message : String(error) } });

/** Writes batches that waited together in one transaction; on a failure, each on its own, so one bad batch fails alone. */
async function write(group: Array<{ id: number; principal: Principal; events: readonly WardenEvent[] }>): Promise<void> {
  if (group.length === 0) return;
  try {
    const answers = await store.ingestBatches(group);
    for (const [i, answer] of answers.entries()) post({ id: group[i]!.id, answer });
  } catch (error) {
    if (group.length === 1) return fail(group[0]!.id, error);
    for (const one of group) await write([one]);
  }
}

async function handle(requests: IngestRequest[]): Promise<void> {
  let group: Array<{ id: number; principal: Principal; events: readonly WardenEvent[] }> = [];
  for (const request of requests) {
    if (request.kind === "close") {
      // After every batch handed over before it.
      await write(group);
      group = [];
      await store.close();
      post({ id: request.id });
      continue;
    }
    try {
      const events = request.events instanceof Uint8Array ? (JSON.parse(decoder.decode(request.events)) as { events: WardenEvent[] }).events : request.events;
      group.push({ id: request.id, principal: request.principal, events });
    } catch (error) {
      fail(request.id, error);
    }
    if (group.length >= GROUP) {
      await write(group);
      group = [];
    }
  }
  await write(group);
}

parentPort!.on("message", (first: IngestRequest) => {
  // Every batch already waiting joins this one's transaction: the further behind, the fewer commits.
  const requests = [first];
  for (let next = receiveMessageOnPort(parentPort!); next !== undefined; next = receiveMessageOnPort(parentPort!)) requests.push(next.message as IngestRequest);
  void handle(requests);
});
