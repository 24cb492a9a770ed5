// The event stream (GET /v1/stream): runs, tool calls, approvals, halts and policy updates as they
// happen. EventSource reconnects by itself and sends Last-Event-ID, so durable messages are not missed.

const TYPES = ["approval.requested", "approval.resolved", "halt.created", "halt.lifted", "policy.updated", "run.updated", "tool_call.updated", "reset"];

/** @type {Map<string, Set<(data: any) => void>>} */
const listeners = new Map();
/** @type {EventSource | undefined} */
let source;
/** @type {(state: "live" | "connecting" | "offline") => void} */
let onState = () => {};

/**
 * Subscribes to one message type ("*" for all). Returns the unsubscribe function.
 * @param {string} type
 * @param {(data: any, type: string) => void} listener
 */
export function on(type, listener) {
  let set = listeners.get(type);
  if (!set) listeners.set(type, (set = new Set()));
  set.add(listener);
  return () => set.delete(listener);
}

function emit(type, data) {
  for (const listener of listeners.get(type) ?? []) listener(data, type);
  for (const listener of listeners.get("*") ?? []) listener(data, type);
}

/** @param {(state: "live" | "connecting" | "offline") => void} stateListener */
export function connect(stateListener) {
  onState = stateListener;
  disconnect();
  onState("connecting");
  const stream = new EventSource("/v1/stream?topics=runs,approvals,halts,policies");
  source = stream;
  stream.addEventListener("open", () => onState("live"));
  stream.addEventListener("hello", () => onState("live"));
  stream.addEventListener("error", () => {
    if (source !== stream) return;
    if (stream.readyState === EventSource.CLOSED) {
      // A refused connection (signed out, server gone): ask the app, then try again later.
      onState("offline");
      window.dispatchEvent(new CustomEvent("warden:stream-closed"));
      setTimeout(() => source === stream && connect(onState), 5000);
    } else onState("connecting");
  });
  for (const type of TYPES) {
    stream.addEventListener(type, (event) => {
      let data = null;
      try {
        data = JSON.parse(/** @type {MessageEvent} */ (event).data);
      } catch {
        return;
      }
      emit(type, data);
    });
  }
}

export function disconnect() {
  source?.close();
  source = undefined;
}
