import { Inject, Injectable } from '@nestjs/common';
import { AppError, modelRouting, type ModelRouting } from '@fastvlm/contracts';
import type { WorkerInfo, WorkerRegistry } from '@fastvlm/jobs';
import { CONFIG, type GatewayConfig } from '../config';
import { REGISTRY } from '../infra/tokens';

/** How stale the view of live workers may be: each gateway reads the registry at most this often. */
const LIVE_TTL_MS = 2_000;

/** A model with its own pool, as `/v1/models` and the metrics see it. */
export interface PoolModel {
  id: string;
  /** In FASTVLM_MODELS (a pool may also exist only because its workers announce it). */
  configured: boolean;
  /** Live workers serving it. */
  workers: number;
  /** The revision the newest live worker serves (what cache keys use); null while none is alive. */
  revision: string | null;
}

interface LiveModel {
  workers: number;
  revision: string;
}

/**
 * The models this gateway routes to, and the name a request gives mapped to
 * the pool that runs it.
 *
 * Served means: configured (`FASTVLM_MODELS`, its aliases) or announced by a
 * live worker. A configured model with no worker yet is served (its jobs wait
 * in its queue for the worker the autoscaler starts); a model whose workers
 * announce it without being configured is served too (the workers decide what
 * runs, as their pool's queue exists the moment they consume it). Anything else
 * is `model_not_found`, listing what is served.
 */
@Injectable()
export class ModelCatalog {
  readonly routing: ModelRouting;
  private live: { at: number; value: Promise<Map<string, LiveModel>> } | null = null;

  constructor(
    @Inject(CONFIG) cfg: GatewayConfig,
    @Inject(REGISTRY) private readonly registry: WorkerRegistry,
  ) {
    this.routing = modelRouting(cfg);
  }

  get defaultModel(): string {
    return this.routing.defaultModel;
  }

  /** The model id a request runs on: the one it names (an id or an alias), or the default. */
  async resolve(name: string | undefined): Promise<string> {
    if (name === undefined) return this.routing.defaultModel;
    const aliased = this.routing.aliases.get(name);
    if (aliased !== undefined) return aliased;
    if (this.routing.models.includes(name)) return name;
    // Only names nothing configured knows cost a registry read (at most one per LIVE_TTL_MS).
    if ((await this.liveModels()).has(name)) return name;
    throw new AppError('model_not_found', await this.notServedMessage(name), 'model');
  }

  /** The revision live workers of `model` serve (for its cache keys); null while none is alive. */
  async revision(model: string): Promise<{ id: string; revision: string } | null> {
    const live = (await this.liveModels()).get(model);
    return live ? { id: model, revision: live.revision } : null;
  }

  /** Every pool: the configured models in order (the default first), then those only workers announce, by id. */
  async pools(): Promise<PoolModel[]> {
    const live = await this.liveModels();
    const of = (id: string, configured: boolean): PoolModel => ({ id, configured, workers: live.get(id)?.workers ?? 0, revision: live.get(id)?.revision ?? null });
    const extra = [...live.keys()].filter((id) => !this.routing.models.includes(id)).sort();
    return [...this.routing.models.map((id) => of(id, true)), ...extra.map((id) => of(id, false))];
  }

  private async notServedMessage(name: string): Promise<string> {
    const served = (await this.pools()).map((p) => p.id).join(', ');
    const aliases = [...this.routing.aliases].map(([alias, id]) => `${alias} → ${id}`).join(', ');
    return `The model "${name}" is not served here; served models: ${served}${aliases ? `; aliases: ${aliases}` : ''}.`;
  }

  /** Live workers by model, read at most every LIVE_TTL_MS (concurrent callers share one read). */
  private liveModels(): Promise<Map<string, LiveModel>> {
    const now = Date.now();
    if (this.live && now - this.live.at < LIVE_TTL_MS) return this.live.value;
    const value = this.registry.alive(now).then(byModel);
    // A failed read is not kept: the next caller tries again.
    value.catch(() => {
      if (this.live?.value === value) this.live = null;
    });
    this.live = { at: now, value };
    return value;
  }
}

/** Workers grouped by model; `alive` lists the newest first, so the newest worker's revision wins during a rollout. */
function byModel(alive: WorkerInfo[]): Map<string, LiveModel> {
  const out = new Map<string, LiveModel>();
  for (const w of alive) {
    const seen = out.get(w.model);
    if (seen) seen.workers += 1;
    else out.set(w.model, { workers: 1, revision: w.revision });
  }
  return out;
}
