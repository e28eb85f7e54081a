/**
 * The SSH port forwarder, a detached process of its own (started by portforward.ts):
 *   node forwarder.js PIDFILE LISTEN_PORT TARGET_ADDRESS TARGET_PORT
 * It listens on the host port (all addresses, loopback included), says "ready" or "error CODE" on
 * stdout, then reads "INIT_PID START_TIME" on stdin and forwards until that process is gone.
 * Stdin closing before that line (its starter died) ends it: nothing is left listening.
 */
import { connect, createServer, type Socket } from 'node:net';
import { procStat } from '../core/proc.js';

const [, , , listenPort, targetAddress, targetPort] = process.argv;

function splice(a: Socket, b: Socket): void {
  // No Nagle: SSH's small handshake messages would otherwise wait on delayed ACKs at each hop.
  a.setNoDelay(true);
  b.setNoDelay(true);
  a.pipe(b);
  b.pipe(a);
  for (const [x, y] of [[a, b], [b, a]]) {
    x.on('error', () => y.destroy());
    x.on('close', () => y.destroy());
  }
}

const server = createServer((client) => splice(client, connect(Number(targetPort), targetAddress)));
server.on('error', (e: NodeJS.ErrnoException) => {
  process.stdout.write(`error ${e.code ?? e.message}\n`);
  process.exit(1);
});
server.listen({ port: Number(listenPort) }, () => process.stdout.write('ready\n'));

let watching = false;
let input = '';
process.stdin.on('data', (b: Buffer) => {
  input += b.toString();
  const m = /^(\d+) (\d+)\n/.exec(input);
  if (!m || watching) return;
  watching = true;
  const [pid, start] = [Number(m[1]), Number(m[2])];
  // The container's init gone (stopped from inside, or killed): stop listening.
  setInterval(() => {
    const st = procStat(pid);
    if (!st || st.state === 'Z' || st.startTime !== start) process.exit(0);
  }, 500);
});
process.stdin.on('end', () => {
  if (!watching) process.exit(0);
});
process.stdin.on('error', () => {
  if (!watching) process.exit(0);
});
