import { runFlowCli } from './cli.js';

process.exitCode = await runFlowCli(process.argv.slice(2));
