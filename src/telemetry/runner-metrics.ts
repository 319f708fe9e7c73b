import { Injectable } from '@nestjs/common';
import type { Counter, Histogram, ObservableGauge } from '@opentelemetry/api';
import { MetricService } from 'nestjs-otel';
import { LabelGuard } from '../common/label-guard.js';

export { LabelGuard };

/** Milliseconds: component calls take microseconds to seconds, flows up to the deadline. */
const MS_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

/** Every instrument the runner records, in one place, so names and labels stay consistent. */
@Injectable()
export class RunnerMetrics {
  readonly labels = new LabelGuard();
  readonly messagesIn: Counter;
  readonly messagesOut: Counter;
  readonly nodeDuration: Histogram;
  readonly componentDuration: Histogram;
  readonly componentTimeouts: Counter;
  readonly componentMemoryKills: Counter;
  readonly sessionStoreDuration: Histogram;
  readonly busLag: Histogram;
  readonly packReloads: Counter;
  readonly metrics: MetricService;

  constructor(metrics: MetricService) {
    this.metrics = metrics;
    const ms = { unit: 'ms', advice: { explicitBucketBoundaries: MS_BUCKETS } };
    this.messagesIn = metrics.getCounter('greentic_messages_in', {
      description:
        'Inbound messages processed, by tenant, channel and outcome (completed, parked, failed, duplicate, error)',
    });
    this.messagesOut = metrics.getCounter('greentic_messages_out', {
      description: 'Reply deliveries to channels, by tenant, channel and outcome (delivered, failed)',
    });
    this.nodeDuration = metrics.getHistogram('greentic_node_duration_ms', {
      ...ms,
      description: 'Time to run one flow node',
    });
    this.componentDuration = metrics.getHistogram('greentic_component_duration_ms', {
      ...ms,
      description: 'Time of one component call',
    });
    this.componentTimeouts = metrics.getCounter('greentic_component_timeouts', {
      description: 'Component calls stopped at their deadline',
    });
    this.componentMemoryKills = metrics.getCounter('greentic_component_memory_kills', {
      description: 'Component instances discarded for exceeding their memory cap',
    });
    this.sessionStoreDuration = metrics.getHistogram('greentic_session_store_duration_ms', {
      ...ms,
      description: 'Session store operation latency, by store and operation',
    });
    this.busLag = metrics.getHistogram('greentic_bus_lag_ms', {
      ...ms,
      description: 'Time from publish to the start of handling, by direction',
    });
    this.packReloads = metrics.getCounter('greentic_pack_reloads', {
      description: 'Pack reloads, by tenant, pack and outcome',
    });
  }

  gauge(name: string, description: string): ObservableGauge {
    return this.metrics.getObservableGauge(name, { description });
  }
}

let shared: RunnerMetrics | undefined;

/**
 * The process's RunnerMetrics for the instrumented seams, which are built in provider factories
 * (no injection there). nestjs-otel keeps one instrument per name, so this and the injected
 * RunnerMetrics record into the same series.
 */
export function runnerMetrics(): RunnerMetrics {
  return (shared ??= new RunnerMetrics(new MetricService()));
}
