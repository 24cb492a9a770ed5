import express, { type NextFunction, type Request, type RequestHandler, type Response } from "express";
import { HttpError } from "../errors.js";

const JSON_TYPES = ["application/json", "application/*+json"];

/** The UTF-8 text of parsed JSON bodies, for a route that hands it on whole (`jsonBody` with `keepText`). */
const texts = new WeakMap<Request, Buffer>();

/** Parses a JSON body up to `limit`; a body of another type is 415, before any parsing. With `keepText`, `bodyText` gives its bytes. */
export function jsonBody(limit: number | string, options: { keepText?: boolean } = {}): RequestHandler[] {
  const verify = options.keepText ? (request: Request, _response: Response, bytes: Buffer, encoding: string) => void (encoding.toLowerCase() === "utf-8" && bytes[0] !== 0xef && texts.set(request, bytes)) : undefined;
  return [requireJson, express.json({ limit, strict: true, type: JSON_TYPES, ...(verify && { verify: verify as never }) })];
}

/** The bytes of the request's JSON body, when its route kept them and they are UTF-8 without a byte order mark. */
export function bodyText(request: Request): Buffer | undefined {
  return texts.get(request);
}

function requireJson(request: Request, _response: Response, next: NextFunction): void {
  const length = request.headers["content-length"];
  const hasBody = request.headers["transfer-encoding"] !== undefined || (length !== undefined && length !== "0");
  if (hasBody && !request.is(JSON_TYPES)) throw new HttpError(415, "unsupported_media_type", "send JSON (Content-Type: application/json)");
  next();
}
