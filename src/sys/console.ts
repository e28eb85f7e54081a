import { connect } from 'node:net';
import { STATUS } from '../core/driver.js';
import { dreError } from '../core/errors.js';
import { checkName } from '../core/names.js';
import { requireRoot } from '../core/privilege.js';
import { consoleSocketPath } from './layout.js';
import { refuseUnless, requireContainer } from './state.js';

/** The byte that detaches from the console: Ctrl-] (as telnet and virsh console). */
const DETACH = 0x1d;

/**
 * Attaches the caller's terminal to the guest's serial console until Ctrl-] (or the guest goes away).
 * The terminal is put in raw mode so that keys such as Ctrl-C reach the guest.
 */
export async function attachConsole(name: string): Promise<void> {
  const n = checkName(name, 'container name');
  requireRoot(`console of ${n}`);
  requireContainer(n, 'console of');
  await refuseUnless(n, 'console of', [STATUS.RUNNING, STATUS.SUSPENDED]);
  const sock = connect(consoleSocketPath(n));
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', (e) => reject(dreError('DRE_ERR_DEVICE_BUSY', `console of ${n}: ${e.message}`, e)));
  });
  const stdin = process.stdin;
  const raw = stdin.isTTY === true;
  if (raw) stdin.setRawMode(true);
  if (process.stderr.isTTY) process.stderr.write(`Connected to the console of ${n}; Ctrl-] detaches.\r\n`);
  await new Promise<void>((resolve) => {
    const done = () => {
      stdin.off('data', onKey);
      stdin.pause();
      if (raw) stdin.setRawMode(false);
      sock.destroy();
      resolve();
    };
    const onKey = (b: Buffer) => {
      const cut = b.indexOf(DETACH);
      if (cut >= 0) {
        if (cut > 0) sock.write(b.subarray(0, cut));
        done();
      } else sock.write(b);
    };
    stdin.on('data', onKey);
    stdin.once('end', done);
    sock.on('data', (b) => process.stdout.write(b));
    sock.once('close', done);
    sock.once('error', done);
    stdin.resume();
  });
}
