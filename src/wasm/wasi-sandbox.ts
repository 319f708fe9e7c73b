/**
 * The WASI preview2 imports components get (componentize-js components import wasi:cli, io,
 * clocks, random, filesystem and http even when their code never touches them).
 *
 * Built from @bytecodealliance/preview2-shim, restricted:
 *   - environment: no variables, no arguments, no initial cwd (the host's would leak);
 *   - filesystem: an isolated namespace with no preopens (no host directory is reachable), or,
 *     for a pack's components, the pack's `assets/` read-only at `/` (wasi-readonly-fs.ts);
 *   - sockets / outgoing HTTP: denied (a later `greentic:host/http` import is the way out);
 *   - exit: throws instead of ending the host process; stdin: refused;
 *   - stdout goes to the host's stderr, so the host's stdout stays clean structured logs.
 * Clocks and random come from the shim, the wall clock wrapped: the transpile is `importBindings:
 * 'hybrid'` (transpile-cache.ts), so a function carrying `Symbol.for('cabiLower')` is called with
 * its own lowering. The shim's monotonic clock and random bytes are correct that way; its wall
 * clock's lowering writes the datetime at the wrong offsets (Date.now() read 0 in a component, and
 * guest memory past the return area was overwritten), so the guest gets it through jco's lowering.
 */
import * as cli from '@bytecodealliance/preview2-shim/cli';
import * as clocks from '@bytecodealliance/preview2-shim/clocks';
import * as filesystem from '@bytecodealliance/preview2-shim/filesystem';
import * as http from '@bytecodealliance/preview2-shim/http';
import * as io from '@bytecodealliance/preview2-shim/io';
import * as random from '@bytecodealliance/preview2-shim/random';
import * as sockets from '@bytecodealliance/preview2-shim/sockets';
import type { ComponentImports } from './transpile-cache.js';
import { createReadOnlyFilesystem } from './wasi-readonly-fs.js';

/** Thrown into the component when it calls `wasi:cli/exit`; surfaces as a trap. */
export class ComponentExitError extends Error {
  constructor(readonly code: number) {
    super(`component called wasi:cli/exit (code ${code})`);
    this.name = 'ComponentExitError';
  }
}

/** Thrown when a component asks for a capability the sandbox does not grant. */
export class SandboxDeniedError extends Error {
  constructor(what: string) {
    super(`${what} is not available to components`);
    this.name = 'SandboxDeniedError';
  }
}

// The package's `types` condition points at the browser declarations; these factories are Node's.
const nodeFilesystem = filesystem as unknown as {
  createFilesystem(config: { preopens: Record<string, string> }): { preopens: object; types: object };
};
const nodeSockets = sockets as unknown as {
  createSockets(config: {
    enableNetwork?: boolean;
  }): Record<
    'instanceNetwork' | 'network' | 'ipNameLookup' | 'tcp' | 'tcpCreateSocket' | 'udp' | 'udpCreateSocket',
    object
  >;
};

export interface WasiSandboxOptions {
  /** Host directory the guest sees read-only at `/` (a pack's `assets/`); none: no filesystem. */
  assetsDir?: string;
}

/**
 * A fresh set of sandboxed WASI imports. No per-tenant state: one set may serve every instance
 * that sees the same assets (WASI 0.2.x imports of any patch version map onto it: jco keys them
 * without the version).
 */
export function createWasiSandbox(options: WasiSandboxOptions = {}): ComponentImports {
  const fs = options.assetsDir
    ? createReadOnlyFilesystem(options.assetsDir)
    : nodeFilesystem.createFilesystem({ preopens: {} });
  const net = nodeSockets.createSockets({ enableNetwork: false });
  const environment = {
    getEnvironment: (): Array<[string, string]> => [],
    getArguments: (): string[] => [],
    initialCwd: (): string | undefined => undefined,
  };
  const exit = {
    exit(status: { tag: 'ok' | 'err' }): never {
      throw new ComponentExitError(status.tag === 'err' ? 1 : 0);
    },
    exitWithCode(code: number): never {
      throw new ComponentExitError(code);
    },
  };
  const stdin = {
    getStdin(): never {
      throw new SandboxDeniedError('stdin');
    },
  };
  const stdout = { getStdout: () => cli.stderr.getStderr() };
  const outgoingHandler = {
    handle(): never {
      // wasi:http/types error-code case; the guest sees a denied request.
      throw { tag: 'HTTP-request-denied' };
    },
  };
  return {
    'wasi:cli/environment': environment,
    'wasi:cli/exit': exit,
    'wasi:cli/stdin': stdin,
    'wasi:cli/stdout': stdout,
    'wasi:cli/stderr': cli.stderr,
    'wasi:cli/terminal-input': cli.terminalInput,
    'wasi:cli/terminal-output': cli.terminalOutput,
    'wasi:cli/terminal-stdin': cli.terminalStdin,
    'wasi:cli/terminal-stdout': cli.terminalStdout,
    'wasi:cli/terminal-stderr': cli.terminalStderr,
    'wasi:clocks/monotonic-clock': clocks.monotonicClock,
    'wasi:clocks/wall-clock': {
      now: () => clocks.wallClock.now(),
      resolution: () => clocks.wallClock.resolution(),
    },
    'wasi:filesystem/preopens': fs.preopens,
    'wasi:filesystem/types': fs.types,
    'wasi:io/error': io.error,
    'wasi:io/poll': io.poll,
    'wasi:io/streams': io.streams,
    'wasi:random/random': random.random,
    'wasi:random/insecure': random.insecure,
    'wasi:random/insecure-seed': random.insecureSeed,
    'wasi:sockets/instance-network': net.instanceNetwork,
    'wasi:sockets/network': net.network,
    'wasi:sockets/ip-name-lookup': net.ipNameLookup,
    'wasi:sockets/tcp': net.tcp,
    'wasi:sockets/tcp-create-socket': net.tcpCreateSocket,
    'wasi:sockets/udp': net.udp,
    'wasi:sockets/udp-create-socket': net.udpCreateSocket,
    'wasi:http/types': http.types,
    'wasi:http/outgoing-handler': outgoingHandler,
  };
}

/** Interfaces a component imports that `provided` does not supply. */
export function missingImports(required: readonly string[], provided: ComponentImports): string[] {
  return required.filter((name) => provided[name] === undefined && provided[wasiKey(name)] === undefined);
}

/**
 * The shim's key for a WASI import: jco names an import without its version (`wasi:io/streams`)
 * unless a component imports two versions of one interface, then with it (`wasi:io/streams@0.2.3`).
 * Every 0.2.x maps onto the preview2 shim; other majors are not provided.
 */
export function wasiKey(name: string): string {
  const m = /^(wasi:[a-z-]+\/[a-z-]+)@0\.2\.\d+$/.exec(name);
  return m ? m[1]! : name;
}

/** `imports` plus versioned keys for the WASI 0.2.x names in `required` that jco spelt with a version. */
export function withWasiVersions(imports: ComponentImports, required: readonly string[]): ComponentImports {
  let out = imports;
  for (const name of required) {
    const key = wasiKey(name);
    if (key !== name && out[name] === undefined && out[key] !== undefined) {
      if (out === imports) out = { ...imports };
      out[name] = out[key]!;
    }
  }
  return out;
}
