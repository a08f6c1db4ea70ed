import { Readable } from 'node:stream';
import { Controller, Delete, Get, Inject, Param, Post, Query, Req, Res, UseGuards } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '@fastvlm/contracts';
import { isFileId, newFileId, type FilePart, type FileRecord, type FileRecords } from '@fastvlm/batches';
import { BlobNotFound, type BlobStore } from '@fastvlm/files';
import type { Principal } from '@fastvlm/security';
import { CONFIG, type GatewayConfig } from '../config';
import { ApiKeyGuard, Caller } from '../http/auth.guard';
import { RequireScope } from '../security/require-scope';
import { readUpload } from './file-upload';
import { listView, pageLimit, toFileView, type FileView } from './file-view';
import { BLOB_STORE, FILE_RECORDS } from './tokens';

/** `/v1/files`: OpenAI's Files API for batch input, and the batches' output and error files. Per tenant. */
@Controller('v1/files')
@UseGuards(ApiKeyGuard)
export class FilesController {
  constructor(
    @Inject(CONFIG) private readonly cfg: GatewayConfig,
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
    @Inject(FILE_RECORDS) private readonly files: FileRecords,
  ) {}

  @Post()
  @RequireScope('infer')
  async upload(@Caller() caller: Principal, @Req() req: FastifyRequest): Promise<FileView> {
    const id = newFileId();
    const key = `files/${id}`;
    const up = await readUpload(req, this.blobs, key, { maxBytes: this.cfg.FILES_MAX_BYTES, maxLines: this.cfg.FILES_MAX_LINES });
    if (up.purpose !== 'batch') {
      await this.blobs.delete(key).catch(() => undefined);
      throw new AppError('invalid_request', `purpose must be "batch" (this server keeps files for the Batch API only); got ${JSON.stringify(up.purpose)}.`, 'purpose');
    }
    const now = Date.now();
    const record: FileRecord = {
      id,
      tenant: caller.tenant,
      purpose: 'batch',
      filename: up.filename,
      bytes: up.bytes,
      createdAt: now,
      expiresAt: now + (up.expiresAfterS ?? this.cfg.FILES_DEFAULT_EXPIRY_S) * 1000,
      parts: [{ key, bytes: up.bytes }],
    };
    try {
      await this.files.create(record);
    } catch (e) {
      await this.blobs.delete(key).catch(() => undefined);
      throw e;
    }
    return toFileView(record);
  }

  @Get()
  @RequireScope('jobs:read')
  async list(
    @Caller() caller: Principal,
    @Query('after') after?: string,
    @Query('limit') limit?: string,
    @Query('order') order?: string,
    @Query('purpose') purpose?: string,
  ): Promise<ReturnType<typeof listView<FileView>>> {
    if (order !== undefined && order !== 'asc' && order !== 'desc') throw new AppError('invalid_request', 'order must be "asc" or "desc".', 'order');
    if (purpose !== undefined && purpose !== 'batch' && purpose !== 'batch_output') throw new AppError('invalid_request', 'purpose must be "batch" or "batch_output".', 'purpose');
    const page = await this.files.list(caller.tenant, { after, limit: limitOf(limit, 10_000), order: order ?? 'desc', ...(purpose ? { purpose } : {}) });
    return listView(page.data.map(toFileView), page.hasMore);
  }

  @Get(':id')
  @RequireScope('jobs:read')
  async get(@Caller() caller: Principal, @Param('id') id: string): Promise<FileView> {
    return toFileView(await this.owned(id, caller));
  }

  @Get(':id/content')
  @RequireScope('jobs:read')
  async content(@Caller() caller: Principal, @Param('id') id: string, @Res() reply: FastifyReply): Promise<void> {
    const f = await this.owned(id, caller);
    // The first part is opened before the headers go out, so a missing blob is still a clean 404.
    const first = f.parts[0] ? await this.open(f, f.parts[0]) : Readable.from([]);
    const rest = f.parts.slice(1);
    const open = (p: FilePart) => this.open(f, p);
    async function* concat(): AsyncGenerator<Buffer> {
      for await (const chunk of first) yield chunk as Buffer;
      for (const p of rest) for await (const chunk of await open(p)) yield chunk as Buffer;
    }
    await reply
      .header('content-type', 'application/octet-stream')
      .header('content-length', String(f.bytes))
      .header('content-disposition', `attachment; filename="${f.filename.replace(/["\\]/g, '_')}"`)
      .send(Readable.from(concat()));
  }

  @Delete(':id')
  @RequireScope('infer')
  async remove(@Caller() caller: Principal, @Param('id') id: string): Promise<{ id: string; object: 'file'; deleted: true }> {
    await this.owned(id, caller);
    const parts = await this.files.remove(id, caller.tenant);
    if (!parts) throw notFound(id);
    await Promise.all(parts.map((p) => this.blobs.delete(p.key)));
    return { id, object: 'file', deleted: true };
  }

  private async open(f: FileRecord, p: FilePart): Promise<Readable> {
    try {
      return await this.blobs.get(p.key);
    } catch (e) {
      if (e instanceof BlobNotFound) throw new AppError('not_found', `The content of file ${f.id} is gone from storage.`, 'id');
      throw e;
    }
  }

  /** The file if it exists and belongs to the caller's tenant; 404 otherwise, never 403. */
  private async owned(id: string, caller: Principal): Promise<FileRecord> {
    const f = isFileId(id) ? await this.files.get(id) : null;
    if (!f || f.tenant !== caller.tenant) throw notFound(id);
    return f;
  }
}

function notFound(id: string): AppError {
  return new AppError('not_found', `No file with id ${id}.`, 'id');
}

function limitOf(raw: string | undefined, max: number): number {
  try {
    return pageLimit(raw, max);
  } catch (e) {
    throw new AppError('invalid_request', (e as Error).message, 'limit');
  }
}
