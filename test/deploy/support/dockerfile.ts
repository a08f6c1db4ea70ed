import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DockerfileParser, type Copy, type From, type Healthcheck, type Instruction, type PropertyInstruction } from 'dockerfile-ast';
import { ROOT } from '../../support/stack';

export const DOCKER_DIR = join(ROOT, 'docker');
export const IMAGES = ['gateway', 'scaler', 'worker-cpu', 'worker-cuda'] as const;
export type ImageName = (typeof IMAGES)[number];

/** The app each image runs. */
export const IMAGE_APP = { gateway: 'gateway', scaler: 'scaler', 'worker-cpu': 'worker', 'worker-cuda': 'worker' } as const;

export interface CopyStep {
  /** `--from` stage or image, or null for the build context. */
  from: string | null;
  sources: string[];
  dest: string;
  /** The stage's WORKDIR at this COPY (a relative dest is under it). */
  workdir: string;
}

export interface Stage {
  name: string | null;
  /** The base image with the Dockerfile's ARG defaults filled in. */
  base: string;
  workdir: string;
  env: Record<string, string>;
  labels: Record<string, string>;
  /** Instructions in order, so that a RUN can be replayed with the files copied before it. */
  steps: ({ kind: 'copy'; copy: CopyStep } | { kind: 'run'; command: string } | { kind: 'workdir'; path: string })[];
  copies: CopyStep[];
  runs: string[];
  user: string | null;
  exposes: number[];
  healthcheck: { flags: Record<string, string>; command: string[] } | null;
  cmd: string[] | null;
}

export interface ParsedDockerfile {
  path: string;
  text: string;
  args: Record<string, string>;
  stages: Stage[];
  final: Stage;
}

function flagsOf(i: Instruction & { getFlags(): { getName(): string; getValue(): string | null }[] }): Record<string, string> {
  return Object.fromEntries(i.getFlags().map((f) => [f.getName(), f.getValue() ?? '']));
}

function substitute(s: string, vars: Record<string, string>): string {
  return s.replace(/\$\{(\w+)\}|\$(\w+)/g, (whole, a?: string, b?: string) => vars[a ?? b ?? ''] ?? whole);
}

function props(i: Instruction): Record<string, string> {
  return Object.fromEntries((i as PropertyInstruction).getProperties().map((p) => [p.getName(), p.getValue() ?? '']));
}

export function parseDockerfile(image: ImageName): ParsedDockerfile {
  const path = join(DOCKER_DIR, `${image}.Dockerfile`);
  const text = readFileSync(path, 'utf8');
  const df = DockerfileParser.parse(text);
  const args: Record<string, string> = {};
  for (const a of df.getInitialARGs()) {
    const p = a.getProperty();
    if (p) args[p.getName()] = p.getValue() ?? '';
  }
  const stages: Stage[] = [];
  let stage: Stage | null = null;
  for (const i of df.getInstructions()) {
    const kw = i.getKeyword();
    if (kw === 'FROM') {
      const f = i as From;
      stage = {
        name: f.getBuildStage(),
        base: substitute(f.getImage() ?? '', args),
        workdir: '/',
        env: {},
        labels: {},
        steps: [],
        copies: [],
        runs: [],
        user: null,
        exposes: [],
        healthcheck: null,
        cmd: null,
      };
      stages.push(stage);
      continue;
    }
    if (!stage) continue;
    const content = i.getArgumentsContent() ?? '';
    switch (kw) {
      case 'WORKDIR':
        stage.workdir = content.startsWith('/') ? content : join(stage.workdir, content);
        stage.steps.push({ kind: 'workdir', path: stage.workdir });
        break;
      case 'ENV':
        Object.assign(stage.env, props(i));
        break;
      case 'LABEL':
        Object.assign(stage.labels, props(i));
        break;
      case 'COPY': {
        const c = i as Copy;
        const words = c.getArguments().map((a) => a.getValue());
        const copy: CopyStep = { from: c.getFromFlag()?.getValue() ?? null, sources: words.slice(0, -1), dest: words.at(-1) ?? '', workdir: stage.workdir };
        stage.copies.push(copy);
        stage.steps.push({ kind: 'copy', copy });
        break;
      }
      case 'RUN':
        stage.runs.push(content);
        stage.steps.push({ kind: 'run', command: content });
        break;
      case 'USER':
        stage.user = content.trim();
        break;
      case 'EXPOSE':
        stage.exposes.push(...content.split(/\s+/).filter(Boolean).map((p) => Number(p.split('/')[0])));
        break;
      case 'HEALTHCHECK': {
        const exec = content.replace(/^CMD\s+/, '');
        stage.healthcheck = { flags: flagsOf(i as Healthcheck), command: exec.startsWith('[') ? (JSON.parse(exec) as string[]) : ['/bin/sh', '-c', exec] };
        break;
      }
      case 'CMD':
        stage.cmd = content.startsWith('[') ? (JSON.parse(content) as string[]) : ['/bin/sh', '-c', content];
        break;
      default:
        break;
    }
  }
  const final = stages.at(-1);
  if (!final) throw new Error(`${path} has no FROM`);
  return { path, text, args, stages, final };
}

export function stageNamed(df: ParsedDockerfile, name: string): Stage | undefined {
  return df.stages.find((s) => s.name === name);
}

/** The `npm ci …` command of a RUN line (up to the next `&&`), or null. */
export function npmCiOf(run: string): string | null {
  const m = /(?:^|&&\s*)(npm ci\b[^&]*)/.exec(run);
  return m?.[1]?.trim() ?? null;
}
