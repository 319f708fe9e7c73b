export { SchedulingModule } from './scheduling.module.js';
export { TimerScheduler, tickMessageId } from './timer-scheduler.service.js';
export { TimerLoop, timerKey, type PendingTick, type TickOutcome } from './timer-loop.js';
export { TickSchedule } from './schedule.js';
export { MemoryTickLedger, TICK_LEDGER, type Claim, type TickLedger } from './tick-ledger.js';
export { RedisTickLedger } from './redis-tick-ledger.js';
export { TimerProvider } from './timer.provider.js';
export { TIMER_PROVIDER } from '../tenancy/bundle-timers.js';
