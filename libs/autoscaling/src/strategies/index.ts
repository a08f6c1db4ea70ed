import type { Decision, Strategy, StrategyInput, StrategyName } from '../types';
import { STRATEGY_NAMES } from '../types';
import { adaptive } from './adaptive';
import { aggressive } from './aggressive';
import { conservative } from './conservative';
import { predictive } from './predictive';

export { adaptive, ADAPTIVE } from './adaptive';
export { aggressive, AGGRESSIVE } from './aggressive';
export { conservative, CONSERVATIVE } from './conservative';
export { predictive, PREDICTIVE } from './predictive';
export { HistoryWindows, replicasFor, withHeadroom } from './demand';

export const STRATEGIES: Readonly<Record<StrategyName, Strategy>> = { conservative, aggressive, adaptive, predictive };

/** Every strategy's decision on the same input (the scaler's shadow mode). */
export function decideAll(input: StrategyInput): Record<StrategyName, Decision> {
  const out = {} as Record<StrategyName, Decision>;
  for (const name of STRATEGY_NAMES) out[name] = STRATEGIES[name](input);
  return out;
}
