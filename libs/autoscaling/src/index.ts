export * from './types';
export * from './params';
export * from './activity';
export * from './strategies/index';
export * from './forecast/seasonal-forecast';
export * from './signals/layout';
