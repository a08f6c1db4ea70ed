import { Controller, Get, Inject, UseGuards } from '@nestjs/common';
import { ApiKeyGuard } from '../http/auth.guard';
import { InferenceService } from '../inference/inference.service';

@Controller('v1/models')
@UseGuards(ApiKeyGuard)
export class ModelsController {
  constructor(@Inject(InferenceService) private readonly inference: InferenceService) {}

  @Get()
  list(): { object: 'list'; data: { id: string; object: 'model'; created: number; owned_by: string }[] } {
    return { object: 'list', data: [{ id: this.inference.modelId, object: 'model', created: 0, owned_by: 'fastvlm-serving' }] };
  }
}
