// The witness over HTTP (`warden witness`, `startWitness`): C2SP tlog-witness `POST /add-checkpoint`,
// plus two reads for auditors: `GET /checkpoint?origin=<log>` (the last cosigned head) and `GET /key`.
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Witness, type WitnessOptions } from "./witness.js";

const MAX_BODY = 64 * 1024;

/**
 * A request listener serving `witness` (mount it on any node:http server, or use `startWitness`).
 * @example
 * import { createServer } from "node:http";
 * import { Witness, witnessRequestListener } from "agent-warden/witness";
 * createServer(witnessRequestListener(new Witness({ name: "witness.example.com/w1", logs: [logKey] }))).listen(4100);
 */
export function witnessRequestListener(witness: Witness): RequestListener {
  return (req, res) => {
    handle(witness, req, res).catch(() => {
      if (!res.headersSent) send(res, 500, "internal error\n");
      else res.destroy();
    });
  };
}

async function handle(witness: Witness, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? "/", "http://witness");
  if (url.pathname === "/add-checkpoint") {
    if (req.method !== "POST") return send(res, 405, "use POST\n", { allow: "POST" });
    const body = await readBody(req);
    if (body === undefined) return send(res, 413, `the body exceeds ${MAX_BODY} bytes\n`);
    const answer = witness.addCheckpointBody(body);
    if (answer.status === 200) return send(res, 200, answer.cosignature);
    // tlog-witness: a 409 carries the size of the last cosigned head, so the log can send the right proof.
    if (answer.status === 409) return send(res, 409, `${answer.size}\n`, { "content-type": "text/x.tlog.size", "x-warden-problem": answer.problem });
    return send(res, answer.status, `${answer.problem}\n`);
  }
  if (req.method !== "GET" && req.method !== "HEAD") return send(res, 405, "use GET\n", { allow: "GET, HEAD" });
  if (url.pathname === "/key") return send(res, 200, `${witness.verifierKey()}\n`);
  if (url.pathname === "/checkpoint") {
    const origin = url.searchParams.get("origin");
    if (!origin) return send(res, 400, "give the log's origin: /checkpoint?origin=<origin>\n");
    const note = witness.latest(origin);
    return note === undefined ? send(res, 404, `no checkpoint of "${origin}" was cosigned here\n`) : send(res, 200, note);
  }
  return send(res, 404, "not found\n");
}

function send(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store", ...headers });
  res.end(body);
}

async function readBody(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * A running witness: its URL, the witness itself, and `close()`.
 * @example
 * import type { RunningWitness } from "agent-warden/witness";
 * const running: RunningWitness = await startWitness({ name: "w1.example", logs: [logKey], port: 4100 });
 */
export interface RunningWitness {
  url: string;
  witness: Witness;
  server: Server;
  close(): Promise<void>;
}

/**
 * Starts a witness on `host:port` (default 127.0.0.1, a free port).
 * @example
 * import { startWitness } from "agent-warden/witness";
 * const w = await startWitness({ name: "witness.example.com/w1", keyFile: "./witness.pem", logs: [warden.ledger.verifierKey()], state: "./witness.db" });
 * console.log(w.url, w.witness.verifierKey());
 */
export async function startWitness(options: WitnessOptions & { port?: number | undefined; host?: string | undefined }): Promise<RunningWitness> {
  const witness = new Witness(options);
  const server = createServer(witnessRequestListener(witness));
  server.keepAliveTimeout = 5_000;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => resolve());
    });
  } catch (error) {
    witness.close();
    throw error;
  }
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    witness,
    server,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      witness.close();
    },
  };
}
