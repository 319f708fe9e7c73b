import { Controller, Get, HttpCode, Param, Post, UseGuards } from '@nestjs/common';
import { ApiAcceptedResponse, ApiOkResponse, ApiOperation, ApiParam } from '@nestjs/swagger';
import { ApiAdmin, ApiErrors, DeadLetterList, DeadLetterReplayed } from '../common/openapi-schemas.js';
import { GreenticError } from '../common/errors.js';
import { BundleRegistry } from '../tenancy/bundle-registry.service.js';
import { AdminGuard } from './admin.guard.js';
import { redactForAdmin } from './admin-redaction.js';
import { DeadLetterStore, type DeadLetter } from './dead-letter.store.js';

export class DeadLetterNotFoundError extends GreenticError {
  constructor(tenant: string, id: string) {
    super('dead_letter_not_found', `no dead-lettered message '${id}' for tenant '${tenant}'`, 404, {
      tenant,
      id,
    });
  }
}

/** A dead letter as listed: where it was going and why it failed; the payload stays inside. */
export type DeadLetterView = Omit<DeadLetter, 'payload'>;

/** `/admin/tenants/{tenant}/dead-letters`: list a tenant's dead-lettered messages and replay one. */
@ApiAdmin()
@ApiErrors(404)
@Controller('admin/tenants/:tenant/dead-letters')
@UseGuards(AdminGuard)
export class DeadLettersAdminController {
  constructor(
    private readonly registry: BundleRegistry,
    private readonly store: DeadLetterStore,
  ) {}

  @Get()
  @ApiOperation({ summary: "A tenant's dead-lettered messages seen by this replica, newest first" })
  @ApiParam({ name: 'tenant' })
  @ApiOkResponse({ type: DeadLetterList })
  list(@Param('tenant') tenant: string): { tenant: string; deadLetters: DeadLetterView[] } {
    this.registry.tenant(tenant);
    return { tenant, deadLetters: this.store.list(tenant).map(view) };
  }

  @Post(':id/replay')
  @HttpCode(202)
  @ApiOperation({ summary: 'Publish a dead-lettered message to its original subject again' })
  @ApiParam({ name: 'tenant' })
  @ApiParam({ name: 'id' })
  @ApiAcceptedResponse({ type: DeadLetterReplayed })
  @ApiErrors(503)
  async replay(
    @Param('tenant') tenant: string,
    @Param('id') id: string,
  ): Promise<{ replayed: true; subject: string; msgId: string; deadLetter: DeadLetterView }> {
    this.registry.tenant(tenant);
    const entry = this.store.get(tenant, id);
    if (!entry) throw new DeadLetterNotFoundError(tenant, id);
    const r = await this.store.replay(entry);
    return { replayed: true, ...r, deadLetter: view(entry) };
  }
}

function view(e: DeadLetter): DeadLetterView {
  const { payload: _payload, ...rest } = e;
  return redactForAdmin(rest);
}
