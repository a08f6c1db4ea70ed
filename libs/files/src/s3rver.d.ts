declare module 's3rver' {
  import type { AddressInfo } from 'node:net';

  /** The subset of s3rver's options the test harness uses. */
  export interface S3rverOptions {
    port?: number;
    address?: string;
    directory?: string;
    silent?: boolean;
    configureBuckets?: { name: string; configs?: (string | Buffer)[] }[];
  }

  /** A local S3-compatible server for tests (https://github.com/jamhall/s3rver). */
  export default class S3rver {
    constructor(options?: S3rverOptions);
    run(): Promise<AddressInfo>;
    close(): Promise<void>;
  }
}
