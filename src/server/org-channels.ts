// Which approval channels serve an organization on the control plane: the server's own (`channels`
// option, `--channels`), for every organization; else those the organization's current policy set
// declares (`channels:` in the pushed warden.yaml, secrets read from this server's WARDEN_ variables).
import { ApprovalChannels, channelsFromPolicySet, parsePolicySet, type ApprovalChannelsBackend, type ApprovalChannelsOptions } from "agent-warden";
import type { ControlPlaneStore } from "./store.js";

/** How often organizations with deliveries still due are looked for (their channels resume them). */
const DUE_CHECK_INTERVAL = 5000;

export class OrgChannels {
  readonly #store: ControlPlaneStore;
  readonly #backend: ApprovalChannelsBackend;
  readonly #onError: (error: unknown) => void;
  readonly #global: ApprovalChannels | undefined;
  readonly #byOrg = new Map<string, { etag: string; channels: ApprovalChannels | undefined }>();
  readonly #loading = new Map<string, Promise<ApprovalChannels | undefined>>();
  readonly #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: ApprovalChannelsOptions | undefined, store: ControlPlaneStore, backend: ApprovalChannelsBackend, onError: (error: unknown) => void) {
    this.#store = store;
    this.#backend = backend;
    this.#onError = onError;
    this.#global = options === undefined ? undefined : new ApprovalChannels(options, backend, store.deliveries);
    if (this.#global === undefined && store.deliveries !== undefined) {
      // Deliveries an earlier process left due resume once their organization's channels are loaded.
      const wake = () => void this.#wakeDue().catch(onError);
      wake();
      this.#timer = setInterval(wake, DUE_CHECK_INTERVAL);
      this.#timer.unref();
    }
  }

  /** The channels that serve `org`, if any. */
  async for(org: string): Promise<ApprovalChannels | undefined> {
    if (this.#global !== undefined || this.#closed) return this.#global;
    const loading = this.#loading.get(org);
    if (loading) return loading;
    const load = this.#load(org).finally(() => this.#loading.delete(org));
    this.#loading.set(org, load);
    return load;
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#global?.close();
    for (const { channels } of this.#byOrg.values()) channels?.close();
    this.#byOrg.clear();
  }

  async #load(org: string): Promise<ApprovalChannels | undefined> {
    const current = await this.#store.currentPolicy(org);
    const cached = this.#byOrg.get(org);
    if (cached?.etag === current.etag) return cached.channels;
    let channels: ApprovalChannels | undefined;
    try {
      const options = channelsFromPolicySet(parsePolicySet(current.policies));
      channels = options === undefined ? undefined : new ApprovalChannels(options, this.#backend, this.#store.deliveries, { org });
    } catch (error) {
      // A variable the set names is not set here: the requests still wait; the operator hears why.
      this.#onError(error);
      channels = undefined;
    }
    // The previous version's retries are in the log: the new channels resume them.
    cached?.channels?.close();
    if (this.#closed) {
      channels?.close();
      return undefined;
    }
    // Only organizations with channels are remembered: a name from an unauthenticated request adds nothing.
    if (channels === undefined) this.#byOrg.delete(org);
    else this.#byOrg.set(org, { etag: current.etag, channels });
    return channels;
  }

  async #wakeDue(): Promise<void> {
    for (const org of (await this.#store.deliveries?.dueOrgs?.(Date.now())) ?? []) await this.for(org);
  }
}
