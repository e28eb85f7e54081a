// Shell completion (bash, zsh) and man pages of dre-app and dre-sys, from the command definitions the CLIs
// run (src/cli/docs.ts). Run by `npm run build`; scripts/setup.sh installs them under /usr/local/share.
import { mkdirSync, writeFileSync } from 'node:fs';
import { appCli } from '../dist/src/cli/app-commands.js';
import { sysCli } from '../dist/src/cli/sys-commands.js';
import { bashCompletion, manPage, zshCompletion } from '../dist/src/cli/docs.js';
import { ENVIRONMENT, EXIT_STATUS, version } from '../dist/src/cli/framework.js';

const put = (path, text) => {
  mkdirSync(path.slice(0, path.lastIndexOf('/')), { recursive: true });
  writeFileSync(path, text);
};
for (const spec of [appCli, sysCli]) {
  put(`dist/share/bash-completion/completions/${spec.prog}`, bashCompletion(spec));
  put(`dist/share/zsh/site-functions/_${spec.prog}`, zshCompletion(spec));
  put(`dist/share/man/man1/${spec.prog}.1`, manPage(spec, version(), ENVIRONMENT, EXIT_STATUS));
}
