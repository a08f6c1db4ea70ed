import type { FileRecord } from '@fastvlm/batches';

/** OpenAI's `FileObject`. */
export interface FileView {
  id: string;
  object: 'file';
  bytes: number;
  created_at: number;
  expires_at: number | null;
  filename: string;
  purpose: string;
  status: 'processed';
  status_details: null;
}

const seconds = (ms: number) => Math.floor(ms / 1000);

export function toFileView(f: FileRecord): FileView {
  return {
    id: f.id,
    object: 'file',
    bytes: f.bytes,
    created_at: seconds(f.createdAt),
    expires_at: f.expiresAt === null ? null : seconds(f.expiresAt),
    filename: f.filename,
    purpose: f.purpose,
    status: 'processed',
    status_details: null,
  };
}

/** An OpenAI cursor page: `first_id`/`last_id` and `has_more`; the SDKs pass `after: last_id` for the next one. */
export function listView<T extends { id: string }>(data: T[], hasMore: boolean): { object: 'list'; data: T[]; first_id: string | null; last_id: string | null; has_more: boolean } {
  return { object: 'list', data, first_id: data[0]?.id ?? null, last_id: data[data.length - 1]?.id ?? null, has_more: hasMore };
}

/** `limit` of a list query: OpenAI's default 20, 1 … 10 000 for files and 1 … 100 for batches. */
export function pageLimit(raw: string | undefined, max: number): number {
  if (raw === undefined || raw === '') return 20;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new RangeError(`limit must be an integer from 1 to ${max}`);
  return n;
}
