import { describe, expect, it } from 'vitest';
import { AppError } from '@fastvlm/contracts';
import { FastVlmPipeline } from './pipeline';
import { gradientPng, greedy, useTinyModel } from './test-fixtures';

const model = useTinyModel(1);

describe('forced dispose', () => {
  it('ends the running requests at their next step with service_unavailable, and refuses new ones', async () => {
    const own = await FastVlmPipeline.load({ model: model.dir, threads: 1 });
    const image = await gradientPng(64, 64);
    let tokens = 0;
    const running = own.generate({ image, question: 'long', params: greedy(4096), onToken: () => (tokens += 1) });
    const settled = running.then(
      () => null,
      (e: unknown) => e,
    );
    await new Promise<void>((resolve) => {
      const poll = (): void => void (tokens > 0 ? resolve() : setTimeout(poll, 5));
      poll();
    });
    await own.dispose({ force: true });
    const error = await settled;
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe('service_unavailable');
    // Released after a few steps, not after 4,096 tokens.
    expect(tokens).toBeLessThan(4096);
    await expect(own.generate({ image, question: 'after', params: greedy(2) })).rejects.toMatchObject({ code: 'service_unavailable' });
  });

  it('after an unforced dispose is waiting, a forced one cuts it short', async () => {
    const own = await FastVlmPipeline.load({ model: model.dir, threads: 1 });
    const image = await gradientPng(64, 64);
    let tokens = 0;
    const running = own.generate({ image, question: 'long', params: greedy(4096), onToken: () => (tokens += 1) }).catch((e: unknown) => e);
    const gentle = own.dispose();
    await own.dispose({ force: true });
    await gentle;
    expect(await running).toMatchObject({ code: 'service_unavailable' });
    expect(tokens).toBeLessThan(4096);
  });
});
