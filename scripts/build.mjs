#!/usr/bin/env node
// Bundles each app into dist/apps/<app>/main.js. Dependencies stay external
// (node_modules is installed next to the bundle in images); the project's own
// libs are bundled through the tsconfig path aliases.
import { build } from 'esbuild';
import { argv } from 'node:process';

const APPS = ['gateway', 'worker'];
const wanted = argv.slice(2).length > 0 ? argv.slice(2) : APPS;
for (const app of wanted) {
  if (!APPS.includes(app)) {
    console.error(`unknown app "${app}" (known: ${APPS.join(', ')})`);
    process.exit(2);
  }
}

await Promise.all(
  wanted.map((app) =>
    build({
      entryPoints: [`apps/${app}/src/main.ts`],
      outfile: `dist/apps/${app}/main.js`,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node24',
      packages: 'external',
      sourcemap: true,
      tsconfig: 'tsconfig.json',
      logLevel: 'warning',
    }),
  ),
);
console.log(`built ${wanted.map((a) => `dist/apps/${a}/main.js`).join(', ')}`);
