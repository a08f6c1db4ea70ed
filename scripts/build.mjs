#!/usr/bin/env node
// Bundles each app into dist/apps/<app>/main.js. Dependencies stay external
// (node_modules is installed next to the bundle in images); the project's own
// libs are bundled through the tsconfig path aliases.
import { build } from 'esbuild';
import { copyFile, mkdir } from 'node:fs/promises';
import { argv } from 'node:process';

const APPS = ['gateway', 'worker', 'scaler'];
const wanted = argv.slice(2).length > 0 ? argv.slice(2) : APPS;
for (const app of wanted) {
  if (!APPS.includes(app)) {
    console.error(`unknown app "${app}" (known: ${APPS.join(', ')})`);
    process.exit(2);
  }
}

const nodeBundle = (entry, outfile) =>
  build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    packages: 'external',
    sourcemap: true,
    tsconfig: 'tsconfig.json',
    logLevel: 'warning',
  });

await Promise.all([
  ...wanted.map((app) => nodeBundle(`apps/${app}/src/main.ts`, `dist/apps/${app}/main.js`)),
  // The model pull CLI (`npm run model:pull` runs it through tsx, a devDependency) as a bundle of its
  // own next to the worker's: what the worker image's init container runs.
  ...(wanted.includes('worker') ? [nodeBundle('libs/pipeline/src/hub/cli.ts', 'dist/apps/worker/model-pull.js')] : []),
]);
// The gateway serves the web console from dist/apps/gateway/console: a browser
// bundle (no CDN, the machines are offline), its page and its stylesheet.
if (wanted.includes('gateway')) {
  const web = 'apps/gateway/src/console/web';
  const out = 'dist/apps/gateway/console';
  await mkdir(out, { recursive: true });
  await Promise.all([
    build({
      entryPoints: [`${web}/main.ts`],
      outfile: `${out}/app.js`,
      bundle: true,
      platform: 'browser',
      format: 'esm',
      target: ['chrome111', 'firefox111', 'safari16.4'],
      minify: true,
      sourcemap: true,
      tsconfig: `${web}/tsconfig.json`,
      logLevel: 'warning',
    }),
    copyFile(`${web}/index.html`, `${out}/index.html`),
    copyFile(`${web}/app.css`, `${out}/app.css`),
  ]);
}
// The scaler loads KEDA's contract at run time (@grpc/proto-loader reads .proto files): it looks next to its bundle.
if (wanted.includes('scaler')) {
  await copyFile('apps/scaler/proto/externalscaler.proto', 'dist/apps/scaler/externalscaler.proto');
}
const extras = [wanted.includes('gateway') ? 'dist/apps/gateway/console/' : '', wanted.includes('worker') ? 'dist/apps/worker/model-pull.js' : '', wanted.includes('scaler') ? 'dist/apps/scaler/externalscaler.proto' : ''].filter(Boolean);
console.log(`built ${[...wanted.map((a) => `dist/apps/${a}/main.js`), ...extras].join(', ')}`);
