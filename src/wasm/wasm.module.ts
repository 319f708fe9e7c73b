import { Global, Module } from '@nestjs/common';
import { COMPONENT_RUNTIME } from './component-runtime.js';
import { JcoComponentRuntime } from './jco-component.runtime.js';

/**
 * Provides the ComponentRuntime (COMPONENT_RUNTIME). Global so that FlowsModule and PacksModule
 * inject it without importing this module. The runtime's cache dir can be set with the
 * JCO_RUNTIME_OPTIONS token or `$GREENTIC_CACHE_DIR`.
 */
@Global()
@Module({
  providers: [{ provide: COMPONENT_RUNTIME, useClass: JcoComponentRuntime }],
  exports: [COMPONENT_RUNTIME],
})
export class WasmModule {}
