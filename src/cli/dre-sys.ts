#!/usr/bin/env node
/** `dre-sys`: system containers from the shell. Filled by issue 3. */
import { cliMain } from './common.js';
await cliMain('dre-sys', 'system containers (QEMU) of the D-RE runtime', []);
