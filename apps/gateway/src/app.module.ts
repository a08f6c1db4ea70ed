import { Module, type DynamicModule } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { TerminusModule } from '@nestjs/terminus';
import type { Logger } from 'pino';
import { BatchesModule } from './batches/batches.module';
import { ChatController } from './chat/chat.controller';
import { ConsoleModule } from './console/console.module';
import { CONFIG, type GatewayConfig } from './config';
import { HealthController } from './health/health.controller';
import { ApiKeyGuard } from './http/auth.guard';
import { ErrorFilter } from './http/error.filter';
import { LOGGER } from './http/logger';
import { InferenceService } from './inference/inference.service';
import { InfraModule } from './infra/infra.module';
import { JobsController } from './jobs/jobs.controller';
import { MetricsModule } from './metrics/metrics.module';
import { ModelCatalog } from './models/model-catalog';
import { ModelsController } from './models/models.controller';
import { AdminAuditController } from './admin/admin-audit.controller';
import { AdminKeysController } from './admin/admin-keys.controller';
import { AdminTenantsController } from './admin/admin-tenants.controller';
import { SecurityModule } from './security/security.module';
import { UsageModule } from './usage/usage.module';
import { WebhooksModule } from './webhooks/webhooks.module';
import type { Resolver } from '@fastvlm/security';

/** Replacements for adapters at the network edge (tests). */
export interface GatewayOverrides {
  /** DNS for image URLs. */
  imageUrlResolver?: Resolver;
}

@Module({})
export class AppModule {
  static forConfig(cfg: GatewayConfig, log: Logger, overrides: GatewayOverrides = {}): DynamicModule {
    return {
      module: AppModule,
      global: true,
      imports: [TerminusModule.forRoot({ logger: false }), InfraModule, MetricsModule, ConsoleModule, UsageModule, SecurityModule.forRoot(overrides.imageUrlResolver ?? null), BatchesModule, WebhooksModule],
      controllers: [ChatController, JobsController, ModelsController, HealthController, AdminKeysController, AdminTenantsController, AdminAuditController],
      providers: [
        { provide: CONFIG, useValue: cfg },
        { provide: LOGGER, useValue: log },
        { provide: APP_FILTER, useClass: ErrorFilter },
        ApiKeyGuard,
        InferenceService,
        ModelCatalog,
      ],
      exports: [CONFIG, LOGGER, ModelCatalog, InferenceService],
    };
  }
}
