import { cp, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AppError } from '@fastvlm/contracts';
import { generateModel } from '../generator/index';
import { resolveModel, TINY_RANDOM } from './model-repository';
import { useTinyModel } from './test-fixtures';

const model = useTinyModel(0);

async function notFound(p: Promise<unknown>): Promise<AppError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(AppError);
  expect((e as AppError).code).toBe('model_not_found');
  return e as AppError;
}

const FILES = ['config.json', 'tokenizer.json', 'onnx/decoder_model_merged.onnx', 'onnx/vision_encoder.onnx'];
const mtimes = (dir: string) => Promise.all(FILES.map(async (f) => (await stat(join(dir, f))).mtimeMs));

describe('tiny-random', () => {
  it('is generated once into <cacheDir>/tiny-random and reused afterwards', async () => {
    const cacheDir = join(model.root, 'cache-tiny');
    const first = await resolveModel(TINY_RANDOM, cacheDir);
    expect(first).toMatchObject({ id: TINY_RANDOM, dir: join(cacheDir, 'tiny-random') });
    const before = await mtimes(first.dir);
    const second = await resolveModel(TINY_RANDOM, cacheDir);
    expect(second).toEqual(first);
    expect(await mtimes(second.dir)).toEqual(before);
  });

  it('tiny-random@<name> is its own model id over the same generated files (a second pool on one machine)', async () => {
    const cacheDir = join(model.root, 'cache-tiny');
    const plain = await resolveModel(TINY_RANDOM, cacheDir);
    expect(await resolveModel('tiny-random@other', cacheDir)).toEqual({ id: 'tiny-random@other', dir: plain.dir, revision: plain.revision });
    await notFound(resolveModel('tiny-random@', cacheDir));
    await notFound(resolveModel('tiny-random@../x', cacheDir));
  });

  it('is the seed-0 tiny model: same revision as a folder generated with seed 0', async () => {
    const cacheDir = join(model.root, 'cache-tiny');
    expect((await resolveModel(TINY_RANDOM, cacheDir)).revision).toBe((await resolveModel(model.dir)).revision);
  });
});

describe('hub ids', () => {
  it('an id that is not in the cache is model_not_found, naming tiny-random as the way out', async () => {
    const error = await notFound(resolveModel('onnx-community/FastVLM-0.5B-ONNX', join(model.root, 'empty-cache')));
    expect(error.message).toContain('tiny-random');
    expect(error.message).toContain('onnx-community/FastVLM-0.5B-ONNX');
  });

  it('an id present in the cache resolves to <cacheDir>/hub/org/name/<rev>, main by default', async () => {
    const cacheDir = join(model.root, 'hub-cache');
    const main = join(cacheDir, 'hub', 'acme', 'vlm', 'main');
    const pinned = join(cacheDir, 'hub', 'acme', 'vlm', 'v1.2');
    await mkdir(join(cacheDir, 'hub', 'acme', 'vlm'), { recursive: true });
    await cp(model.dir, main, { recursive: true });
    await cp(model.dir, pinned, { recursive: true });
    const resolved = await resolveModel('acme/vlm', cacheDir);
    expect(resolved).toMatchObject({ id: 'acme/vlm', dir: main });
    // The id is the string asked for: the gateway puts FASTVLM_MODEL in each job and workers must match it.
    expect(await resolveModel('acme/vlm@v1.2', cacheDir)).toMatchObject({ id: 'acme/vlm@v1.2', dir: pinned });
    await notFound(resolveModel('acme/vlm@v2', cacheDir));
  });

  it('a revision or name that climbs out of the cache folder is refused', async () => {
    const cacheDir = join(model.root, 'hub-cache-escape');
    // <cacheDir>/hub/a/b/../../../../<model> would be the generated model itself.
    const climb = relative(join(cacheDir, 'hub', 'a', 'b'), model.dir);
    await notFound(resolveModel(`a/b@${climb}`, cacheDir));
    // <cacheDir>/hub/acme/../main: a name of '..' is not a repository either.
    await mkdir(join(cacheDir, 'hub'), { recursive: true });
    await cp(model.dir, join(cacheDir, 'hub', 'main'), { recursive: true });
    await notFound(resolveModel('acme/..', cacheDir));
  });

  it('something that is neither a folder, a hub id nor tiny-random is model_not_found', async () => {
    const error = await notFound(resolveModel('not a model', join(model.root, 'empty-cache')));
    expect(error.message).toContain(TINY_RANDOM);
  });
});

describe('local folders', () => {
  it('a folder with the model resolves to itself, the id being what was asked for', async () => {
    expect(await resolveModel(model.dir)).toMatchObject({ id: model.dir, dir: model.dir });
  });

  it('a folder without config.json is model_not_found', async () => {
    const dir = join(model.root, 'no-config');
    await cp(model.dir, dir, { recursive: true });
    await rm(join(dir, 'config.json'));
    await notFound(resolveModel(dir));
  });

  it('a folder that does not exist is model_not_found', async () => {
    await notFound(resolveModel(join(model.root, 'missing')));
  });
});

describe('revision', () => {
  it('the same files give the same revision, wherever they are', async () => {
    const copy = join(model.root, 'copy');
    await cp(model.dir, copy, { recursive: true });
    const a = await resolveModel(model.dir);
    const b = await resolveModel(copy);
    expect(a.revision).toMatch(/^[0-9a-f]{16}$/);
    expect(b.revision).toBe(a.revision);
  });

  it('another seed (other weights) gives another revision', async () => {
    const other = join(model.root, 'seed-5');
    await generateModel({ preset: 'tiny', outDir: other, seed: 5 });
    expect((await resolveModel(other)).revision).not.toBe((await resolveModel(model.dir)).revision);
  });

  for (const file of ['config.json', 'generation_config.json', 'tokenizer_config.json', 'tokenizer.json', 'preprocessor_config.json']) {
    it(`editing ${file} changes the revision (it changes the answers)`, async () => {
      const dir = join(model.root, `edit-${file}`);
      await cp(model.dir, dir, { recursive: true });
      const before = (await resolveModel(dir)).revision;
      const json = JSON.parse(await readFile(join(dir, file), 'utf8')) as Record<string, unknown>;
      await writeFile(join(dir, file), JSON.stringify({ ...json, edited_by_test: true }));
      expect((await resolveModel(dir)).revision).not.toBe(before);
    });
  }
});
