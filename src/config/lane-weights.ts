import type { LaneWeights } from '../protocol/topics.js';
import type { SpillwayConfig } from './schema.js';

/** The tenants that get a queue lane of their own: every one listed, when queuing is fair. */
export function laneWeightsOf(config: Pick<SpillwayConfig, 'queuing' | 'tenants'>): LaneWeights {
  if (config.queuing !== 'fair') return new Map();
  return new Map(Object.entries(config.tenants).map(([tenant, settings]) => [tenant, settings.weight ?? 1]));
}
