#!/usr/bin/env node
// `mlsd start` with one more capability, the test's own (test/helpers/notes-capability.ts):
// the same composition root, given a capability that nothing under src/ knows.
import { parseArgs } from 'node:util';
import { startDaemon } from '../../src/main.js';
import { notesCapability } from './notes-capability.js';

const { values } = parseArgs({ args: process.argv.slice(3), options: { 'config-dir': { type: 'string' }, 'data-dir': { type: 'string' }, board: { type: 'string' } } });
const daemon = await startDaemon({ configDir: values['config-dir'], dataDir: values['data-dir'], board: values.board, capabilities: [notesCapability] });
const stop = () => void daemon.stop().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
