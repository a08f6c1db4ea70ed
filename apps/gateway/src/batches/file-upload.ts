import { Readable } from 'node:stream';
import type { FastifyRequest } from 'fastify';
import { AppError } from '@fastvlm/contracts';
import type { BlobStore } from '@fastvlm/files';

export interface Upload {
  filename: string;
  bytes: number;
  purpose: string;
  /** Seconds after creation the client asked the file to expire (`expires_after[seconds]`), if it did. */
  expiresAfterS: number | undefined;
}

const NL = 0x0a;
const FIELDS = new Set(['purpose', 'expires_after[anchor]', 'expires_after[seconds]']);

/** Counts bytes and lines on the way to storage, and stops the upload as soon as either limit is passed. */
class Meter {
  bytes = 0;
  lines = 0;
  private lastByte = NL;

  constructor(private readonly limits: { maxBytes: number; maxLines: number }) {}

  count(chunk: Buffer): void {
    this.bytes += chunk.length;
    if (this.bytes > this.limits.maxBytes) throw new AppError('payload_too_large', `The file is larger than ${this.limits.maxBytes} bytes.`, 'file');
    for (let i = chunk.indexOf(NL); i >= 0; i = chunk.indexOf(NL, i + 1)) this.lines += 1;
    this.lastByte = chunk[chunk.length - 1] ?? this.lastByte;
    // The last line of a file without a final newline is only known at the end; counting it early keeps the limit exact.
    if (this.lines + (this.lastByte === NL ? 0 : 1) > this.limits.maxLines) {
      throw new AppError('invalid_request', `The file has more than ${this.limits.maxLines} lines; a batch holds at most that many requests.`, 'file');
    }
  }

  end(): void {
    if (this.lastByte !== NL) this.lines += 1;
  }
}

/** The upload's bytes as storage reads them, counted; a limit passed ends the stream with its error (and stops reading the request). */
async function* metered(src: AsyncIterable<Buffer>, meter: Meter): AsyncGenerator<Buffer> {
  for await (const chunk of src) {
    meter.count(chunk);
    yield chunk;
  }
  meter.end();
}

/**
 * Reads `POST /v1/files` (multipart: `file`, `purpose`, optional `expires_after`), streaming the
 * file part to `key` in storage: the body is never held whole. The official SDKs send the file
 * before the purpose, so the purpose is checked once the parts are read; the caller deletes the
 * blob when it refuses the upload.
 */
export async function readUpload(req: FastifyRequest, blobs: BlobStore, key: string, limits: { maxBytes: number; maxLines: number }): Promise<Upload> {
  if (!req.isMultipart()) throw new AppError('invalid_request', 'Upload files as multipart/form-data with a "file" part and a "purpose" field.', 'file');
  const fields: Record<string, string> = {};
  let stored: { filename: string; bytes: number } | null = null;
  try {
    // The file may be up to FILES_MAX_BYTES: this call's limit replaces the image-sized default; the meter enforces the exact one.
    for await (const part of req.parts({ limits: { fileSize: limits.maxBytes + 1, files: 1, fields: 5, parts: 6 } })) {
      if (part.type === 'file') {
        if (part.fieldname !== 'file' || stored) {
          part.file.resume();
          throw new AppError('invalid_request', 'Send exactly one file part, named "file".', part.fieldname);
        }
        const meter = new Meter(limits);
        const { bytes } = await blobs.put(key, Readable.from(metered(part.file, meter)), { contentType: 'application/jsonl' });
        stored = { filename: safeName(part.filename), bytes };
        continue;
      }
      if (!FIELDS.has(part.fieldname)) throw new AppError('invalid_request', `Unknown form field "${part.fieldname}".`, part.fieldname);
      fields[part.fieldname] = String(part.value);
    }
  } catch (e) {
    // The client may still be sending: read the rest of the body away, or it never gets to read the error.
    req.raw.unpipe();
    req.raw.resume();
    await blobs.delete(key).catch(() => undefined);
    throw isFrameworkTooLarge(e) ? new AppError('payload_too_large', `The file is larger than ${limits.maxBytes} bytes.`, 'file') : e;
  }
  if (!stored) throw new AppError('invalid_request', 'The form has no "file" part.', 'file');
  return { ...stored, purpose: fields.purpose ?? '', expiresAfterS: expiresAfter(fields) };
}

function expiresAfter(fields: Record<string, string>): number | undefined {
  const anchor = fields['expires_after[anchor]'];
  const seconds = fields['expires_after[seconds]'];
  if (anchor === undefined && seconds === undefined) return undefined;
  if (anchor !== 'created_at') throw new AppError('invalid_request', 'expires_after.anchor must be "created_at".', 'expires_after.anchor');
  const s = Number(seconds);
  // OpenAI's bounds: one hour to thirty days.
  if (!Number.isInteger(s) || s < 3600 || s > 2_592_000) {
    throw new AppError('invalid_request', 'expires_after.seconds must be an integer from 3600 (1 hour) to 2592000 (30 days).', 'expires_after.seconds');
  }
  return s;
}

/** The name as the client gave it, without path or control characters (it is shown back, never used as a path). */
function safeName(name: string): string {
  const base = name.split(/[\\/]/).pop() ?? '';
  const clean = [...base].filter((c) => c.charCodeAt(0) >= 0x20 && c.charCodeAt(0) !== 0x7f).join('').slice(0, 255);
  return clean || 'upload.jsonl';
}

function isFrameworkTooLarge(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: string }).code === 'FST_REQ_FILE_TOO_LARGE';
}
