// Limits on what is recorded, shared by the client (redaction) and the control plane (validation),
// so a payload the client records is never one the server refuses.

/**
 * Deepest nesting the control plane accepts inside free-form JSON (event data, payloads, policy
 * sets): objects may sit at depths 0 to MAX_JSON_DEPTH - 1 below the root.
 */
export const MAX_JSON_DEPTH = 32;

/** How far below an event's `data` a recorded payload sits (`data.input`, `data.output`, `data.payload`…). */
export const PAYLOAD_EMBEDDING_DEPTH = 1;

/**
 * Deepest object a recorded payload keeps (its root is depth 0); anything deeper becomes `"[too deep]"`,
 * so an event built around the payload stays within MAX_JSON_DEPTH.
 */
export const MAX_PAYLOAD_DEPTH = MAX_JSON_DEPTH - PAYLOAD_EMBEDDING_DEPTH - 1;

/**
 * Most values (objects, arrays and primitives, each shared object counted every time it appears)
 * one recorded payload keeps; past it, containers end with a `"[truncated]"` marker. Bounds the
 * work of redaction and of everything that serializes its result.
 */
export const MAX_PAYLOAD_NODES = 100_000;
