import { SetMetadata } from '@nestjs/common';
import type { Scope } from '@fastvlm/security';

export const REQUIRED_SCOPE = 'fastvlm:required-scope';

/** The scope a route needs; routes without one accept any valid key. Enforced by ApiKeyGuard. */
export const RequireScope = (scope: Scope): MethodDecorator & ClassDecorator => SetMetadata(REQUIRED_SCOPE, scope);
