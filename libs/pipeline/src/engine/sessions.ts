import { access } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { AppError } from '@fastvlm/contracts';
import { onnxFileName, parseDtypeSpec, type DtypeMap, type SessionFile } from './dtype';

export type Device = 'cpu' | 'cuda';

export interface SessionOptions {
  /** Intra-op threads per session; 0 lets onnxruntime choose. */
  threads: number;
  /** Weight format per session, i.e. which `onnx/<session><suffix>.onnx` is opened (default fp32 for all). */
  dtypes?: DtypeMap | undefined;
  /** `cpu` (default), or `cuda`: CUDA first, CPU for the nodes CUDA does not run. */
  device?: Device | undefined;
}

export interface ModelSessions {
  vision: ort.InferenceSession;
  embed: ort.InferenceSession;
  decoder: ort.InferenceSession;
  release(): Promise<void>;
}

export function executionProviders(device: Device): ('cpu' | 'cuda')[] {
  return device === 'cuda' ? ['cuda', 'cpu'] : ['cpu'];
}

/** Element type of every tensor input and output of a session, by name. */
export interface IoElementTypes {
  inputs: Readonly<Record<string, ort.Tensor.Type>>;
  outputs: Readonly<Record<string, ort.Tensor.Type>>;
}

/**
 * What a session declares, e.g. `ioElementTypes(decoder).inputs['past_key_values.0.key']`
 * is 'float16' for fp16/q4f16 exports, so callers build feeds of the right type.
 */
export function ioElementTypes(session: Pick<ort.InferenceSession, 'inputMetadata' | 'outputMetadata'>): IoElementTypes {
  const table = (metadata: readonly ort.InferenceSession.ValueMetadata[]) =>
    Object.fromEntries(metadata.flatMap((m) => (m.isTensor ? [[m.name, m.type] as const] : [])));
  return { inputs: table(session.inputMetadata), outputs: table(session.outputMetadata) };
}

/**
 * A float16 input tensor onnxruntime-node 1.30 can read. On Node 24 the Tensor
 * constructor stores float16 data as a Float16Array (and float16 outputs come
 * out as one), but the native binding reads a Float16Array input as 0 bytes
 * ("not enough space: expected N, got 0"); the tensor is handed the same bytes
 * as a Uint16Array view instead, as transformers.js does.
 */
export function float16Input(data: Uint16Array | Float16Array, dims: readonly number[]): ort.Tensor {
  const bits = data instanceof Uint16Array ? data : new Uint16Array(data.buffer, data.byteOffset, data.length);
  const t = new ort.Tensor('float16', bits, dims);
  Reflect.set(t, 'cpuData', bits);
  return t;
}

/** `t` made safe to feed back as an input (float16 outputs such as present.* → past_key_values.*). */
export function asInput(t: ort.Tensor): ort.Tensor {
  if (t.type !== 'float16' || t.location !== 'cpu') return t;
  return float16Input(t.data as Uint16Array | Float16Array, t.dims);
}

/** Shared libraries onnxruntime-node needs next to its binding to run the CUDA provider, by `platform/arch`. */
const CUDA_LIBRARIES: Readonly<Record<string, readonly string[]>> = {
  'linux/x64': ['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so'],
  'win32/x64': ['onnxruntime_providers_cuda.dll', 'onnxruntime_providers_shared.dll'],
};

/** Where onnxruntime-node keeps its native binding and provider libraries. */
export function onnxruntimeBinDir(): string {
  const pkg = dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json'));
  return join(pkg, 'bin', 'napi-v6', process.platform, process.arch);
}

const CUDA_HOWTO =
  'Install onnxruntime-node with its CUDA download enabled (a CUDA worker image does this when it is built): ' +
  'ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci (or npm_config_onnxruntime_node_install=cuda12; this repo\'s .npmrc sets ' +
  '"skip" for CPU installs), or run `ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js`. ' +
  'The host also needs CUDA 12 and cuDNN 9 libraries on the loader path. Or set FASTVLM_DEVICE=cpu.';

/** Why the CUDA provider cannot load from `binDir`, or null when its libraries are there. */
export async function cudaProviderProblem(
  binDir = onnxruntimeBinDir(),
  target = `${process.platform}/${process.arch}`,
): Promise<string | null> {
  const libs = Object.hasOwn(CUDA_LIBRARIES, target) ? CUDA_LIBRARIES[target] : undefined;
  if (!libs) return `FASTVLM_DEVICE=cuda, but onnxruntime-node has no CUDA execution provider on ${target}; use FASTVLM_DEVICE=cpu.`;
  const missing: string[] = [];
  for (const lib of libs) {
    try {
      await access(join(binDir, lib));
    } catch {
      missing.push(lib);
    }
  }
  if (missing.length === 0) return null;
  return `FASTVLM_DEVICE=cuda, but onnxruntime-node's CUDA execution provider is not installed (${missing.join(', ')} missing in ${binDir}). ${CUDA_HOWTO}`;
}

const KEYS = { vision: 'vision_encoder', embed: 'embed_tokens', decoder: 'decoder_model_merged' } as const satisfies Record<string, SessionFile>;

/** Opens the three sessions of the FastVLM export in the given weight formats and device. */
export async function openSessions(dir: string, opts: SessionOptions): Promise<ModelSessions> {
  const dtypes = opts.dtypes ?? parseDtypeSpec(undefined);
  const device = opts.device ?? 'cpu';
  if (device === 'cuda') {
    const problem = await cudaProviderProblem();
    if (problem) throw new AppError('model_load_failed', problem);
  }
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: executionProviders(device),
    graphOptimizationLevel: 'all',
    // Spinning threads burn the CPU between steps; in a pod with a CPU limit
    // (or next to the gateway on a laptop) that time is taken from real work.
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
    ...(opts.threads > 0 ? { intraOpNumThreads: opts.threads } : {}),
  };
  const open = async (session: SessionFile): Promise<ort.InferenceSession> => {
    const file = onnxFileName(session, dtypes[session]);
    try {
      await access(join(dir, file));
    } catch {
      throw new AppError('model_load_failed', `The model folder lacks ${file} (dtype ${dtypes[session]} of ${session}).`);
    }
    try {
      return await ort.InferenceSession.create(join(dir, file), options);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      // The provider library is there but could not start: almost always the CUDA runtime itself.
      const hint = device === 'cuda' ? ' The CUDA provider needs CUDA 12 and cuDNN 9 libraries on the loader path.' : '';
      throw new AppError('model_load_failed', `onnxruntime could not load ${file} on ${device}: ${why}.${hint}`);
    }
  };
  const results = await Promise.allSettled([open(KEYS.vision), open(KEYS.embed), open(KEYS.decoder)]);
  const [vision, embed, decoder] = results.map((r) => (r.status === 'fulfilled' ? r.value : undefined));
  if (!vision || !embed || !decoder) {
    // Sessions that did open hold native memory: release them before reporting the failure.
    await Promise.all([vision, embed, decoder].flatMap((s) => (s ? [s.release()] : [])));
    const failure = results.find((r) => r.status === 'rejected');
    throw failure?.reason instanceof Error ? failure.reason : new AppError('model_load_failed', 'a model session failed to open');
  }
  return {
    vision,
    embed,
    decoder,
    release: async () => {
      await Promise.all([vision.release(), embed.release(), decoder.release()]);
    },
  };
}
