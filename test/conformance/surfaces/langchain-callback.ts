import type { Surface } from "../harness.js";
import { driveLangChain } from "../drivers/langchain.js";

/** LangChain: `WardenCallbackHandler` on a `createAgent` loop without the middleware; `handleToolStart` refuses by throwing, which the tool node hands the model. */
export const surface: Surface = {
  name: "langchain: callback handler",
  drive: (call) => driveLangChain(call, "callback handler"),
};
