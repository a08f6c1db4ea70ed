import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, isAbsolute, join, posix, sep } from 'node:path';
import { ROOT } from '../../support/stack';
import { npmCiOf, stageNamed, type CopyStep, type ParsedDockerfile, type Stage } from './dockerfile';

/**
 * A `.dockerignore` as Docker reads it: each line a pattern relative to the
 * context root (`*` and `?` within a path segment, `**` across segments), a
 * pattern that matches a folder excludes all under it, `!` re-includes, and
 * the last matching line wins.
 */
export class DockerIgnore {
  private readonly rules: { negate: boolean; re: RegExp }[];

  constructor(text: string) {
    this.rules = text
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'))
      .map((l) => {
        const negate = l.startsWith('!');
        const pattern = posix.normalize((negate ? l.slice(1) : l).replace(/^\/+/, ''));
        return { negate, re: DockerIgnore.toRegExp(pattern) };
      });
  }

  static fromContext(root = ROOT): DockerIgnore {
    const path = join(root, '.dockerignore');
    return new DockerIgnore(existsSync(path) ? readFileSync(path, 'utf8') : '');
  }

  private static toRegExp(pattern: string): RegExp {
    let re = '';
    for (let i = 0; i < pattern.length; i++) {
      const ch = pattern[i] ?? '';
      if (ch === '*' && pattern[i + 1] === '*') {
        // `**/` matches any number of folders, none included; a trailing `**` anything.
        if (pattern[i + 2] === '/') {
          re += '(?:.*/)?';
          i += 2;
        } else {
          re += '.*';
          i += 1;
        }
      } else if (ch === '*') re += '[^/]*';
      else if (ch === '?') re += '[^/]';
      else re += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    }
    return new RegExp(`^${re}$`);
  }

  /** Whether a path (relative to the context root, `/`-separated) is left out of the context. */
  ignores(rel: string): boolean {
    const parts = rel.split('/');
    let ignored = false;
    // A folder's exclusion covers everything under it: check the path and each of its parents.
    for (let n = 1; n <= parts.length; n++) {
      const prefix = parts.slice(0, n).join('/');
      for (const r of this.rules) if (r.re.test(prefix)) ignored = !r.negate;
    }
    return ignored;
  }
}

/** Copies a build-context path as `COPY` would see it: files the .dockerignore leaves out are not there. */
function copyFromContext(ignore: DockerIgnore, rel: string, dest: string): void {
  const src = join(ROOT, rel);
  if (ignore.ignores(rel) || !existsSync(src)) throw new Error(`COPY ${rel}: not in the build context (missing, or left out by .dockerignore)`);
  if (!statSync(src).isDirectory()) {
    mkdirSync(dirname(dest), { recursive: true });
    cpSync(src, dest);
    return;
  }
  mkdirSync(dest, { recursive: true });
  for (const entry of readdirSync(src)) {
    const childRel = posix.join(rel, entry);
    if (ignore.ignores(childRel)) continue;
    copyFromContext(ignore, childRel, join(dest, entry));
  }
}

/** Where a COPY's dest lands under `root`, and whether it names a folder (several sources, or a trailing `/`). */
function destOf(root: string, c: CopyStep): { path: string; isDir: boolean } {
  const abs = isAbsolute(c.dest) ? c.dest : posix.join(c.workdir, c.dest);
  return { path: join(root, abs), isDir: c.sources.length > 1 || c.dest.endsWith('/') };
}

/** Applies one COPY into `root` (a stand-in for the stage's file system), from the context or an earlier stage's root. */
function applyCopy(root: string, c: CopyStep, ignore: DockerIgnore, stageRoots: ReadonlyMap<string, string>): void {
  const { path: dest, isDir } = destOf(root, c);
  for (const source of c.sources) {
    if (c.from === null) {
      const rel = posix.normalize(source).replace(/^\.?\/+/, '');
      const src = join(ROOT, rel);
      // A folder's contents land in dest itself; a file lands in dest, or in it when dest is a folder.
      const folder = existsSync(src) && statSync(src).isDirectory();
      copyFromContext(ignore, rel, folder || !isDir ? dest : join(dest, basename(rel)));
      continue;
    }
    const fromRoot = stageRoots.get(c.from);
    if (!fromRoot) throw new Error(`COPY --from=${c.from}: no such stage reproduced here`);
    const src = join(fromRoot, source);
    if (!existsSync(src)) throw new Error(`COPY --from=${c.from} ${source}: the stage has no such path`);
    if (statSync(src).isDirectory()) cpSync(src, dest, { recursive: true, verbatimSymlinks: true });
    else {
      mkdirSync(isDir ? dest : dirname(dest), { recursive: true });
      cpSync(src, isDir ? join(dest, basename(src)) : dest);
    }
  }
}

const HOST_NODE_MODULES = join(ROOT, 'node_modules');

/**
 * Reproduces a build stage in a folder standing for its file system: every
 * COPY from the context (through .dockerignore), and every RUN, run by `sh` in
 * the stage's WORKDIR with the stage's ENV. The stage's `npm ci` (all
 * dependencies, from the same package-lock.json) is the checkout's own
 * node_modules, linked: this machine installs from the same lockfile and
 * reaches no registry for native downloads.
 */
export function reproduceBuildStage(root: string, stage: Stage, ignore: DockerIgnore): void {
  let workdir = '/';
  for (const step of stage.steps) {
    if (step.kind === 'workdir') {
      workdir = step.path;
      mkdirSync(join(root, workdir), { recursive: true });
    } else if (step.kind === 'copy') {
      if (step.copy.from !== null) throw new Error(`build stage ${stage.name ?? ''}: COPY --from is not reproduced here`);
      applyCopy(root, step.copy, ignore, new Map());
    } else {
      const cwd = join(root, workdir);
      const npmCi = npmCiOf(step.command);
      let command = step.command;
      if (npmCi !== null) {
        if (!existsSync(join(cwd, 'node_modules'))) symlinkSync(HOST_NODE_MODULES, join(cwd, 'node_modules'), 'dir');
        command = command.replace(npmCi, 'true');
      }
      execFileSync('sh', ['-c', command], {
        cwd,
        env: { HOME: process.env.HOME ?? '/root', ...stage.env, PATH: `${join(cwd, 'node_modules', '.bin')}:${process.env.PATH ?? ''}` },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    }
  }
}

export interface ImageRoot {
  /** The folder standing for the image's file system. */
  root: string;
  /** The image's WORKDIR inside `root`: where CMD runs. */
  appDir: string;
  /** The final stage's `npm ci --omit=dev …` as the Dockerfile spells it. */
  npmCi: string;
  /** COPY lines of the final stage that bring a runtime (node itself) rather than the app; not reproduced. */
  runtimeCopies: CopyStep[];
}

/**
 * Lays out a Dockerfile's final stage: exactly the paths its COPY lines name,
 * from the build context (through .dockerignore) or from the reproduced build
 * stages. Copies of the Node runtime from a plain base stage (`COPY --from=node
 * /usr/local/...`) are left out: the machine's Node 24 stands in for them.
 */
export function layoutFinalStage(df: ParsedDockerfile, root: string, buildRoots: ReadonlyMap<string, string>, ignore: DockerIgnore): ImageRoot {
  const stage = df.final;
  const runtimeCopies: CopyStep[] = [];
  for (const c of stage.copies) {
    const fromStage = c.from === null ? undefined : stageNamed(df, c.from);
    if (fromStage && !buildRoots.has(c.from ?? '') && fromStage.runs.length === 0 && fromStage.copies.length === 0) {
      runtimeCopies.push(c);
      continue;
    }
    applyCopy(root, c, ignore, buildRoots);
  }
  const npmCi = stage.runs.map(npmCiOf).find((x): x is string => x !== null);
  if (!npmCi) throw new Error(`${df.path}: the final stage runs no npm ci`);
  return { root, appDir: join(root, stage.workdir), npmCi, runtimeCopies };
}

/**
 * Production dependencies installed from package.json, package-lock.json and
 * .npmrc by the final stage's own `npm ci` command, once per content of those
 * files (the install takes most of a minute). Kept under the system's temp
 * folder so that a later run on this machine reuses it; a new lockfile's
 * install replaces the older ones.
 */
/**
 * How this machine reaches the registry (a proxy, its CA): what a package missing from npm's cache needs, and
 * what a `docker build` gets from its builder. Nothing else of the caller's environment reaches the install.
 */
function network(): Record<string, string> {
  const names = ['NODE_EXTRA_CA_CERTS', 'SSL_CERT_FILE', 'SSL_CERT_DIR', 'HTTPS_PROXY', 'HTTP_PROXY', 'NO_PROXY', 'https_proxy', 'http_proxy', 'no_proxy'];
  return Object.fromEntries(names.flatMap((n) => (process.env[n] ? [[n, process.env[n]]] : [])));
}

export function productionDependencies(npmCi: string, env: Record<string, string>): string {
  const files = ['package.json', 'package-lock.json', '.npmrc'];
  const hash = createHash('sha256');
  for (const f of files) hash.update(f).update(readFileSync(join(ROOT, f)));
  hash.update(npmCi).update(JSON.stringify(env));
  const name = `fastvlm-prod-deps-${hash.digest('hex').slice(0, 16)}`;
  const dir = join(tmpdir(), name);
  if (existsSync(join(dir, 'node_modules'))) return dir;
  // Installed aside and renamed into place, so that a run that stops half way, or a second run
  // at the same time, never leaves a partial install under the final name.
  const staging = `${dir}.${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  for (const f of files) cpSync(join(ROOT, f), join(staging, f));
  // prefer-offline: the same package set, from npm's cache where it has them.
  execFileSync('sh', ['-c', npmCi], {
    cwd: staging,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...network(), ...env, npm_config_prefer_offline: 'true' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    renameSync(staging, dir);
  } catch {
    // Another run got there first with the same install.
    rmSync(staging, { recursive: true, force: true });
  }
  for (const old of readdirSync(tmpdir())) {
    if (/^fastvlm-prod-deps-[0-9a-f]{16}$/.test(old) && old !== name) rmSync(join(tmpdir(), old), { recursive: true, force: true });
  }
  return dir;
}

/** Makes a tree under the system's temp folder readable and traversable by every user, as image layers are. */
export function openToAll(path: string): void {
  const tmp = tmpdir();
  if (!path.startsWith(`${tmp}${sep}`)) throw new Error(`${path} is not under ${tmp}`);
  for (let p = path; p !== tmp; p = dirname(p)) chmodSync(p, 0o755);
  execFileSync('chmod', ['-R', 'a+rX', path]);
}
