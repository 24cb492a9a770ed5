import { appendFileSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import type { WardenEvent } from "../events.js";

const SEGMENT_BYTES = 2 * 1024 * 1024;
const NAME = /^spool-(\d+)-(\d+)-(\d+)\.jsonl$/;

/**
 * Events that could not be sent, on disk as JSON Lines in segments of a few MB, oldest first.
 * Each process writes its own segments; a segment whose writer died is adopted by the next
 * process that opens the directory. Replaying a segment twice is harmless: the server drops
 * events it already has.
 */
export class Spool {
  readonly dir: string;
  readonly #maxBytes: number;
  readonly #segments: Array<{ path: string; bytes: number }> = [];
  #writing: { path: string; bytes: number } | undefined;
  #reading: { path: string; events: WardenEvent[]; cursor: number } | undefined;
  #bytes = 0;
  #counter = 0;
  readonly #started = Date.now();

  constructor(dir: string, maxBytes: number) {
    this.dir = dir;
    this.#maxBytes = maxBytes;
    mkdirSync(dir, { recursive: true });
    this.#adoptOrphans();
  }

  /** Bytes on disk. */
  get bytes(): number {
    return this.#bytes;
  }

  get hasData(): boolean {
    return this.#segments.length > 0;
  }

  /** Appends events. Returns how many were written: fewer when the spool is full. Throws when the disk refuses. */
  append(events: readonly WardenEvent[]): number {
    if (events.length === 0) return 0;
    let text = "";
    let written = 0;
    for (const event of events) {
      const line = `${JSON.stringify(event)}\n`;
      if (this.#bytes + text.length + line.length > this.#maxBytes) break;
      text += line;
      written++;
    }
    if (written === 0) return 0;
    if (this.#writing === undefined || this.#writing.bytes >= SEGMENT_BYTES) {
      this.#writing = { path: this.#nextSegmentPath(), bytes: 0 };
      this.#segments.push(this.#writing);
    }
    const bytes = Buffer.byteLength(text);
    appendFileSync(this.#writing.path, text, { mode: 0o600 });
    this.#writing.bytes += bytes;
    this.#bytes += bytes;
    return written;
  }

  /** The next events to replay, oldest first, without removing them. */
  peek(max: number): WardenEvent[] {
    if (this.#reading === undefined) {
      const segment = this.#segments[0];
      if (segment === undefined) return [];
      // The segment being read is closed for writing; new events start a new one.
      if (segment === this.#writing) this.#writing = undefined;
      this.#reading = { path: segment.path, events: readSegment(segment.path), cursor: 0 };
      if (this.#reading.events.length === 0) {
        this.#dropSegment();
        return this.peek(max);
      }
    }
    return this.#reading.events.slice(this.#reading.cursor, this.#reading.cursor + max);
  }

  /** Removes the first `count` events `peek` returned (the server has them). */
  ack(count: number): void {
    if (this.#reading === undefined) return;
    this.#reading.cursor += count;
    if (this.#reading.cursor >= this.#reading.events.length) this.#dropSegment();
  }

  /** `spool-<pid>-<start>-<n>.jsonl`: the pid tells whether its writer still lives; the rest orders segments. */
  #nextSegmentPath(): string {
    return join(this.dir, `spool-${process.pid}-${this.#started}-${String(++this.#counter).padStart(6, "0")}.jsonl`);
  }

  #dropSegment(): void {
    const segment = this.#segments.shift();
    this.#reading = undefined;
    if (segment === undefined) return;
    this.#bytes -= segment.bytes;
    try {
      unlinkSync(segment.path);
    } catch {
      // Already gone.
    }
  }

  #adoptOrphans(): void {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return;
    }
    const orphans = names
      .map((name) => ({ name, match: NAME.exec(name) }))
      .filter((f) => f.match !== null && Number(f.match[1]) !== process.pid && !alive(Number(f.match[1])))
      .sort((a, b) => Number(a.match![2]) - Number(b.match![2]) || a.name.localeCompare(b.name));
    for (const { name } of orphans) {
      const path = this.#nextSegmentPath();
      try {
        // Renaming claims it: of two processes adopting at once, one wins.
        renameSync(join(this.dir, name), path);
        const bytes = statSync(path).size;
        this.#segments.push({ path, bytes });
        this.#bytes += bytes;
      } catch {
        // Another process took it.
      }
    }
  }
}

function readSegment(path: string): WardenEvent[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return [];
  }
  const events: WardenEvent[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    try {
      events.push(JSON.parse(line) as WardenEvent);
    } catch {
      // A line cut short by a crash mid-write.
    }
  }
  return events;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
