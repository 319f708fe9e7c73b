import { Controller, Get, Req, Res } from '@nestjs/common';
import { ApiOperation, ApiProduces, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { telemetry } from './otel.js';

/** `/metrics`: the Prometheus text format, on the runner's own port (no second listener). */
@ApiTags('operations')
@Controller('metrics')
export class MetricsController {
  @Get()
  @ApiOperation({ summary: 'Prometheus metrics (text exposition format)' })
  @ApiProduces('text/plain')
  @ApiResponse({ status: 200, description: 'Metrics in the Prometheus text format' })
  @ApiResponse({
    status: 404,
    description: 'Metrics are turned off (GREENTIC_METRICS=false or OTEL_SDK_DISABLED=true)',
  })
  metrics(@Req() req: Request, @Res() res: Response): void {
    const exporter = telemetry()?.prometheus;
    if (!exporter) {
      res.status(404).json({
        error: {
          code: 'metrics_disabled',
          message: 'metrics are turned off (GREENTIC_METRICS=false or OTEL_SDK_DISABLED=true)',
        },
      });
      return;
    }
    exporter.getMetricsRequestHandler(req, res);
  }
}
