#!/usr/bin/env node
/** `dre-sys`: system containers from the shell, a thin user of the QEMU driver. */
import { cliMain } from './framework.js';
import { sysCli } from './sys-commands.js';

void cliMain(sysCli); // it exits the process itself, with the command's status
