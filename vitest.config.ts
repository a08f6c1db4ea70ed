import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

export default defineConfig({
  resolve: {
    alias: {
      '@fastvlm/contracts': here('./libs/contracts/src/index.ts'),
      '@fastvlm/pipeline': here('./libs/pipeline/src/index.ts'),
      '@fastvlm/security': here('./libs/security/src/index.ts'),
      '@fastvlm/jobs': here('./libs/jobs/src/index.ts'),
      '@fastvlm/observability': here('./libs/observability/src/index.ts'),
      '@fastvlm/autoscaling': here('./libs/autoscaling/src/index.ts'),
      '@fastvlm/files': here('./libs/files/src/index.ts'),
      '@fastvlm/batches': here('./libs/batches/src/index.ts'),
      '@fastvlm/webhooks': here('./libs/webhooks/src/index.ts'),
    },
  },
  test: {
    include: ['apps/**/*.test.ts', 'libs/**/*.test.ts', 'test/**/*.test.ts'],
    globalSetup: ['./test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2,
  },
});
