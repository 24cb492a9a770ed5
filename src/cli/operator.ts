// What an operator does from the CLI (halt, resume, approvals, runs, ledger), against either the local
// store or a control plane over HTTP: the same commands serve one machine and a fleet.
import type { ApprovalDecisionInput } from "../approvals/approvals.js";
import type { ApprovalStatus, RunStatus } from "../enums.js";
import { InvalidInputError, RemoteError } from "../errors.js";
import type { HaltRecord, HaltTarget } from "../halt/halt.js";
import type { ApprovalRecord, RunSummary } from "../records.js";
import type { Warden } from "../warden.js";
import type { WitnessedHeads } from "../ledger/witnessed.js";

/** A control plane names the first bad entry only when it is the caller's organization's (the chain is shared): `firstBadSeq` may be absent. */
export type LedgerCheck =
  | { ok: true; entries: number; checkpoints: number; head: { seq: number; hash: string } | null; witnesses?: WitnessedHeads[] | undefined; witnessed?: { upTo: number; head: boolean } | undefined }
  | { ok: false; entries: number; firstBadSeq?: number | undefined; problem: string; witnesses?: WitnessedHeads[] | undefined };

export interface Operator {
  halt(input: HaltTarget & { reason: string; actor?: string | undefined }): Promise<HaltRecord>;
  resume(input: HaltTarget & { reason?: string | undefined; actor?: string | undefined }): Promise<HaltRecord[]>;
  activeHalts(): Promise<readonly HaltRecord[]>;
  approvals(status: ApprovalStatus | undefined): Promise<ApprovalRecord[]>;
  decide(approvalId: string, verdict: "approve" | "reject", input: ApprovalDecisionInput): Promise<ApprovalRecord>;
  runs(filter: { agentId?: string | undefined; status?: RunStatus | undefined; traceId?: string | undefined; limit: number }): Promise<RunSummary[]>;
  verifyLedger(): Promise<LedgerCheck>;
}

/** The local store, through a Warden client. */
export function localOperator(warden: Warden): Operator {
  return {
    halt: async (input) => warden.halt(input),
    resume: async (input) => warden.resume(input),
    activeHalts: async () => warden.activeHalts,
    approvals: async (status) => warden.approvals.list({ status }),
    decide: async (approvalId, verdict, input) => (verdict === "approve" ? warden.approvals.approve(approvalId, input) : warden.approvals.reject(approvalId, input)),
    runs: async (filter) => warden.listRuns(filter),
    verifyLedger: async () => warden.ledger.verify(),
  };
}

/** One request to a control plane's `/v1` API, answering its JSON; failures say which URL and what to check. */
export type ControlPlaneCall = <T>(method: string, path: string, body?: unknown, headers?: Record<string, string>) => Promise<T>;

/** Replicas' statuses that another replica may serve instead (the library's failover rule). */
const FAILS_OVER = new Set([502, 503, 504]);

/**
 * The control plane URLs of `--url` (or WARDEN_URL): one, or a comma-separated list of replicas.
 * Each must be http(s); a usage error names the one that is not.
 */
export function controlPlaneUrls(url: string): string[] {
  const urls = url.split(",").map((part) => part.trim()).filter((part) => part !== "");
  if (urls.length === 0) throw new InvalidInputError("--url (or WARDEN_URL) names no control plane: give http://host:port, or several separated by commas");
  for (const candidate of urls) {
    let protocol: string;
    try {
      protocol = new URL(candidate).protocol;
    } catch {
      throw new InvalidInputError(`--url (or WARDEN_URL): "${candidate}" is not a URL; give http://host:port, or several separated by commas`);
    }
    if (protocol !== "http:" && protocol !== "https:") throw new InvalidInputError(`--url (or WARDEN_URL): "${candidate}" is not http or https`);
  }
  return urls.map((candidate) => candidate.replace(/\/+$/, ""));
}

/**
 * Requests to a control plane (`warden serve`) with an API key. Given several URLs (replicas), a
 * request that cannot reach one, or that it answers 502/503/504, goes to the next; the one that
 * answered serves the following requests. A 4xx is an answer, never a reason to switch.
 */
export function controlPlane(url: string, apiKey: string): ControlPlaneCall {
  const urls = controlPlaneUrls(url);
  let current = 0;
  return async <T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> => {
    for (let tried = 1; ; tried++) {
      try {
        return await requestOnce<T>(urls[current]!, apiKey, method, path, body, headers);
      } catch (error) {
        const unavailable = error instanceof RemoteError && error.retryable && (error.status === undefined || FAILS_OVER.has(error.status));
        if (!unavailable || tried >= urls.length) throw error;
        current = (current + 1) % urls.length;
      }
    }
  };
}

async function requestOnce<T>(base: string, apiKey: string, method: string, path: string, body: unknown, headers: Record<string, string>): Promise<T> {
  let response: Response;
  try {
    response = await fetch(`${base}/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${apiKey}`, ...(body !== undefined && { "content-type": "application/json" }), ...headers },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
  } catch (cause) {
    throw new RemoteError(`cannot reach the control plane at ${base} (${networkReason(cause)}): check that \`warden serve\` runs there and that --url (or WARDEN_URL) names its address and port`, { retryable: true, cause });
  }
  const text = await response.text();
  let payload: unknown;
  try {
    payload = text ? (JSON.parse(text) as unknown) : undefined;
  } catch {
    throw new RemoteError(`${base} answered ${method} /v1${path} with ${response.status} and no JSON: is --url the address of \`warden serve\`?`, { status: response.status, retryable: FAILS_OVER.has(response.status) });
  }
  if (!response.ok) {
    const error = (payload as { error?: { message?: string } } | undefined)?.error;
    const hint = response.status === 401 ? " (check --api-key or WARDEN_API_KEY)" : response.status === 403 ? " (this key's role may not do that)" : "";
    throw new RemoteError(`[${method}] "${base}/v1${path}": ${response.status} ${error?.message ?? response.statusText}${hint}`, { status: response.status, retryable: [429, 502, 503, 504].includes(response.status) });
  }
  return payload as T;
}

/** `fetch failed` says nothing: the cause's code does (connection refused, unknown host, timeout). */
function networkReason(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  const code = cause?.code ?? (error as { code?: string }).code;
  const known: Record<string, string> = { ECONNREFUSED: "connection refused", ENOTFOUND: "unknown host", EAI_AGAIN: "host name lookup failed", ETIMEDOUT: "timed out", ECONNRESET: "connection reset", EHOSTUNREACH: "host unreachable" };
  return (code && known[code]) ?? cause?.message ?? (error as Error).message ?? String(error);
}

/** A control plane (`warden serve`), with an API key of the right role. */
export function remoteOperator(url: string, apiKey: string): Operator {
  const call = controlPlane(url, apiKey);
  const query = (params: Record<string, string | number | undefined>) => {
    const search = new URLSearchParams(Object.entries(params).flatMap(([k, v]): Array<[string, string]> => (v === undefined ? [] : [[k, String(v)]])));
    return search.size > 0 ? `?${search}` : "";
  };
  return {
    halt: (input) => call("POST", "/halts", input),
    resume: async (input) => (await call<{ lifted: HaltRecord[] }>("POST", "/halts/resume", input)).lifted,
    activeHalts: async () => (await call<{ halts: HaltRecord[] }>("GET", "/halts")).halts,
    approvals: async (status) => (await call<{ items: ApprovalRecord[] }>("GET", `/approvals${query({ status })}`)).items,
    decide: (approvalId, verdict, input) => call("POST", `/approvals/${encodeURIComponent(approvalId)}/${verdict}`, input),
    runs: async (filter) => (await call<{ items: RunSummary[] }>("GET", `/runs${query({ agentId: filter.agentId, status: filter.status, traceId: filter.traceId, limit: filter.limit })}`)).items,
    verifyLedger: () => call("GET", "/ledger/verify"),
  };
}
