// The ingest writer thread (ingest-thread.ts): its own connection to the control plane's SQLite file,
// on which each batch is written in one transaction, in the order the batches were handed over.
import { parentPort, workerData } from "node:worker_threads";
import type { WardenEvent } from "agent-warden";
import type { IngestReply, IngestRequest, IngestThreadData } from "./ingest-thread.js";
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

parentPort!.on("message", (request: IngestRequest) => {
  if (request.kind === "close") {
    void store.close().finally(() => post({ id: request.id }));
    return;
  }
  const fail = (error: unknown) => post({ id: request.id, error: { message: error instanceof Error ? error.message : String(error) } });
  let events: readonly WardenEvent[];
  try {
    events = request.events instanceof Uint8Array ? (JSON.parse(decoder.decode(request.events)) as { events: WardenEvent[] }).events : request.events;
  } catch (error) {
    return fail(error);
  }
  // The store's ingest runs synchronously inside its transaction: batches commit one after the other.
  store.ingest(request.principal, events).then((answer) => post({ id: request.id, answer }), fail);
});
