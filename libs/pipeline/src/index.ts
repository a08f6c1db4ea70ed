export * from './types';
export { FastVlmPipeline, loadPipeline, type PipelineOptions } from './engine/pipeline';
export { resolveModel, defaultCacheDir, TINY_RANDOM, type ResolvedModel } from './engine/model-repository';
export { generateModel, PRESETS, type PresetName } from './generator/index';
