import { Module } from '@nestjs/common';
import { ConsoleController } from './console.controller';
import { OverviewService } from './overview.service';

/** The web console's API (its static files are served by `serveConsole`). */
@Module({ controllers: [ConsoleController], providers: [OverviewService] })
export class ConsoleModule {}
