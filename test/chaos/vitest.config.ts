import { defineConfig } from 'vitest/config';
import base from '../../vitest.config';

/**
 * `npm run test:chaos`: fault scenarios on real processes and private
 * redis-servers. Files run one at a time: each starts several model-loading
 * processes, and two such files side by side on a 2-core machine would turn
 * lock expiries into takeovers nobody asked for.
 */
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: ['test/chaos/**/*.chaos.ts', 'test/chaos/**/*.chaos.test.ts'],
    testTimeout: 360_000,
    hookTimeout: 120_000,
    fileParallelism: false,
    maxWorkers: 1,
  },
});
