export * from './image-processor-config';
export * from './preprocess';
