/**
 * What can go wrong talking QMP, as types: callers decide by class, never by parsing a message.
 * QEMU itself reports almost every refusal as class GenericError with English text; the two texts
 * D-RE must tell apart are recognised here, in one place, next to the QEMU words they rely on.
 */

/** Any failure of one QMP command: `command` names it. */
export class QmpError extends Error {
  constructor(
    readonly command: string,
    message: string,
  ) {
    super(`${command}: ${message}`);
  }
}

/** QEMU answered the command with an error: `errorClass` (GenericError, CommandNotFound, DeviceNotActive, ...) and QEMU's own words. */
export class QmpRefused extends QmpError {
  constructor(
    command: string,
    readonly errorClass: string,
    readonly desc: string,
  ) {
    super(command, desc);
  }
}

/** No answer within the caller's time (QEMU busy, stuck, or the reply lost). */
export class QmpTimeout extends QmpError {
  constructor(
    command: string,
    readonly timeoutMs: number,
  ) {
    super(command, `no answer from QEMU after ${timeoutMs} ms`);
  }
}

/** The connection ended before the answer came (QEMU exited, or was killed). */
export class QmpClosed extends QmpError {
  constructor(command: string) {
    super(command, 'QEMU closed the QMP connection');
  }
}

/** migrate-incoming refused because its port cannot be listened on (QEMU: "Failed to bind socket: Address already in use"). */
export function isListenRefused(e: unknown): e is QmpRefused {
  return e instanceof QmpRefused && /in use|bind/i.test(e.desc);
}

/** A failed migration's `error-desc` saying that nothing accepted the connection (refused, no route, unreachable, timed out). */
export function isTargetUnreachable(desc: string): boolean {
  return /refused|no route|unreachable|timed out/i.test(desc);
}
