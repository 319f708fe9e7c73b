import { Module } from '@nestjs/common';
import { WasmModule } from '../wasm/wasm.module.js';
import { FlowExecutorService } from './flow-executor.service.js';

/** Flow execution; COMPONENT_RUNTIME comes from WasmModule (global, imported here to be explicit). */
@Module({
  imports: [WasmModule],
  providers: [FlowExecutorService],
  exports: [FlowExecutorService],
})
export class FlowsModule {}
