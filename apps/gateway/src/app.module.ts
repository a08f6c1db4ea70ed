import { Module, type DynamicModule } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { TerminusModule } from '@nestjs/terminus';
import type { Logger } from 'pino';
import { ChatController } from './chat/chat.controller';
import { CONFIG, type GatewayConfig } from './config';
import { HealthController } from './health/health.controller';
import { ApiKeyGuard } from './http/auth.guard';
import { ErrorFilter } from './http/error.filter';
import { LOGGER } from './http/logger';
import { InferenceService } from './inference/inference.service';
import { InfraModule } from './infra/infra.module';
import { JobsController } from './jobs/jobs.controller';
import { ModelsController } from './models/models.controller';

@Module({})
export class AppModule {
  static forConfig(cfg: GatewayConfig, log: Logger): DynamicModule {
    return {
      module: AppModule,
      global: true,
      imports: [TerminusModule.forRoot({ logger: false }), InfraModule],
      controllers: [ChatController, JobsController, ModelsController, HealthController],
      providers: [
        { provide: CONFIG, useValue: cfg },
        { provide: LOGGER, useValue: log },
        { provide: APP_FILTER, useClass: ErrorFilter },
        ApiKeyGuard,
        InferenceService,
      ],
      exports: [CONFIG, LOGGER],
    };
  }
}
