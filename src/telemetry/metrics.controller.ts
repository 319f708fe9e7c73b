import { Controller, Get, Req, Res } from '@nestjs/common';
import { ApiOperation, ApiProduces, ApiResponse, ApiTags, getSchemaPath } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ErrorResponse } from '../common/openapi-schemas.js';
import { telemetry } from './otel.js';

/** `/metrics`: the Prometheus text format, on the runner's own port (no second listener). */
@ApiTags('operations')
@Controller('metrics')
export class MetricsController {
  @Get()
  @ApiOperation({ summary: 'Prometheus metrics (text exposition format)' })
  @ApiProduces('text/plain')
  @ApiResponse({
    status: 200,
    description: 'Metrics in the Prometheus text format',
    schema: { type: 'string' },
  })
  @ApiResponse({
    status: 404,
    content: { 'application/json': { schema: { $ref: getSchemaPath(ErrorResponse) } } },
    description: 'Metrics are turned off (GREENTIC_METRICS=false or OTEL_SDK_DISABLED=true)',
  })
  metrics(@Req() req: FastifyRequest, @Res() res: FastifyReply): void {
    const exporter = telemetry()?.prometheus;
    if (!exporter) {
      void res.code(404).send({
        error: {
          code: 'metrics_disabled',
          message: 'metrics are turned off (GREENTIC_METRICS=false or OTEL_SDK_DISABLED=true)',
        },
      });
      return;
    }
    // The exporter writes the Node response itself; Fastify must not answer too.
    res.hijack();
    exporter.getMetricsRequestHandler(req.raw, res.raw);
  }
}
