#!/usr/bin/env node
/** `dre-app`: application containers from the shell, a thin user of the LXC driver. */
import { appCli } from './app-commands.js';
import { cliMain } from './framework.js';

void cliMain(appCli); // it exits the process itself, with the command's status
