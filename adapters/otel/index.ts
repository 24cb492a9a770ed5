export { instrumentWarden } from "./instrument.js";
export type { WardenTelemetryOptions } from "./instrument.js";
