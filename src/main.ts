import 'reflect-metadata';
import { runStart } from './cli/greentic-runner/start.js';

// Same as `greentic-runner start`: listen, then drain and exit 0 on SIGTERM. A start-up failure
// prints one line per problem and exits 1 (configuration) or 2 (a dependency is unreachable).
const code = await runStart();
if (code !== 0) process.exit(code);
