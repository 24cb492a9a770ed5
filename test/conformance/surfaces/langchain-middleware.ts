import type { Surface } from "../harness.js";
import { driveLangChain } from "../drivers/langchain.js";

/** LangChain: `createAgent` + `wardenMiddleware` (approval: "wait"); a refusal is an error `ToolMessage` to the model, a halt rejects the invocation. */
export const surface: Surface = {
  name: "langchain: middleware",
  drive: (call) => driveLangChain(call, "middleware"),
};
