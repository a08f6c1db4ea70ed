export * from './api-keys';
export * from './image-check';
