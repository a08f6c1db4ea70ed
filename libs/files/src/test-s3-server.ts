import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestS3Server {
  /** `http://127.0.0.1:PORT`: use with forcePathStyle and the `S3RVER` keys. */
  endpoint: string;
  bucket: string;
  /** s3rver checks signatures against these fixed keys. */
  credentials: { accessKeyId: string; secretAccessKey: string };
  stop(): Promise<void>;
}

/** An s3rver of the test's own on a free port, storing in a temp folder, with one empty bucket. */
export async function startS3Server(bucket = 'fastvlm-test'): Promise<TestS3Server> {
  // Loaded on call: s3rver is a devDependency, and this module is reachable from the lib's index that apps bundle.
  const { default: S3rver } = await import('s3rver');
  const directory = await mkdtemp(join(tmpdir(), 'fastvlm-s3rver-'));
  const server = new S3rver({ port: 0, address: '127.0.0.1', directory, silent: true, configureBuckets: [{ name: bucket }] });
  const { port } = await server.run();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    bucket,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    async stop() {
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
