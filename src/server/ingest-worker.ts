// The ingest writer thread (ingest-thread.ts): its own connection to the control plane's SQLite file,
// on which each batch is written in one transaction, in the order the batches were handed over.
import { parentPort, workerData } from "node:worker_threads";
import type { IngestReply, IngestRequest, IngestThreadData } from "./ingest-thread.js";
import { SqliteControlPlaneStore } from "./sqlite-store.js";

const data = workerData as IngestThreadData;
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
  // The store's ingest runs synchronously inside its transaction: batches commit one after the other.
  store.ingest(request.principal, request.events).then(
    (answer) => post({ id: request.id, answer }),
    (error: unknown) => post({ id: request.id, error: { message: error instanceof Error ? error.message : String(error) } }),
  );
});
