export * from './errors';
export * from './queue';
export * from './job';
export * from './events';
export * from './config';
