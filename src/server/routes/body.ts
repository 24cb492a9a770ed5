import express, { type NextFunction, type Request, type RequestHandler, type Response } from "express";
import { HttpError } from "../errors.js";

const JSON_TYPES = ["application/json", "application/*+json"];

/** Parses a JSON body up to `limit`; a body of another type is 415, before any parsing. */
export function jsonBody(limit: number | string): RequestHandler[] {
  return [requireJson, express.json({ limit, strict: true, type: JSON_TYPES })];
}

function requireJson(request: Request, _response: Response, next: NextFunction): void {
  const length = request.headers["content-length"];
  const hasBody = request.headers["transfer-encoding"] !== undefined || (length !== undefined && length !== "0");
  if (hasBody && !request.is(JSON_TYPES)) throw new HttpError(415, "unsupported_media_type", "send JSON (Content-Type: application/json)");
  next();
}
