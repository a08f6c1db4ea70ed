import { Controller, Get, Inject, UseGuards } from '@nestjs/common';
import { ApiKeyGuard } from '../http/auth.guard';
import { ModelCatalog } from './model-catalog';

/**
 * One entry of `GET /v1/models`: OpenAI's model object (`id`, `object`,
 * `created`, `owned_by`: what the SDKs parse) with two fields of ours, which
 * the SDKs pass through: `ready` (a live worker serves it; false: its jobs
 * wait for one) and, on an alias, `alias_of` (the model id it runs on, which
 * responses name).
 */
export interface ModelObject {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
  ready: boolean;
  alias_of?: string;
}

const OWNER = 'fastvlm-serving';

@Controller('v1/models')
@UseGuards(ApiKeyGuard)
export class ModelsController {
  constructor(@Inject(ModelCatalog) private readonly catalog: ModelCatalog) {}

  /** Every served model (the default first), then every alias: each name a request's `model` may use. */
  @Get()
  async list(): Promise<{ object: 'list'; data: ModelObject[] }> {
    const pools = await this.catalog.pools();
    const ready = new Map(pools.map((p) => [p.id, p.workers > 0]));
    const models: ModelObject[] = pools.map((p) => ({ id: p.id, object: 'model', created: 0, owned_by: OWNER, ready: p.workers > 0 }));
    const aliases: ModelObject[] = [...this.catalog.routing.aliases].map(([alias, id]) => ({
      id: alias,
      object: 'model',
      created: 0,
      owned_by: OWNER,
      ready: ready.get(id) ?? false,
      alias_of: id,
    }));
    return { object: 'list', data: [...models, ...aliases] };
  }
}
