export { AdminModule } from './admin.module.js';
export { AdminGuard, AdminAccessError } from './admin.guard.js';
