import { access } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { AppError } from '@fastvlm/contracts';

export interface SessionOptions {
  /** Intra-op threads per session; 0 lets onnxruntime choose. */
  threads: number;
}

export interface ModelSessions {
  vision: ort.InferenceSession;
  embed: ort.InferenceSession;
  decoder: ort.InferenceSession;
  release(): Promise<void>;
}

const FILES = { vision: 'vision_encoder', embed: 'embed_tokens', decoder: 'decoder_model_merged' } as const;

/** Opens the three sessions of the FastVLM export (fp32 files for now). */
export async function openSessions(dir: string, opts: SessionOptions): Promise<ModelSessions> {
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    // Spinning threads burn the CPU between steps; in a pod with a CPU limit
    // (or next to the gateway on a laptop) that time is taken from real work.
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
    ...(opts.threads > 0 ? { intraOpNumThreads: opts.threads } : {}),
  };
  const open = async (name: string): Promise<ort.InferenceSession> => {
    const path = join(dir, 'onnx', `${name}.onnx`);
    try {
      await access(path);
    } catch {
      throw new AppError('model_load_failed', `The model folder lacks onnx/${name}.onnx.`);
    }
    try {
      return await ort.InferenceSession.create(path, options);
    } catch (e) {
      throw new AppError('model_load_failed', `onnxruntime could not load onnx/${name}.onnx: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  const [vision, embed, decoder] = await Promise.all([open(FILES.vision), open(FILES.embed), open(FILES.decoder)]);
  return {
    vision,
    embed,
    decoder,
    release: async () => {
      await Promise.all([vision.release(), embed.release(), decoder.release()]);
    },
  };
}
