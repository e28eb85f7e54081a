/** SSH into a container a test or bench made itself, with its own throwaway key. */

/**
 * ssh's arguments for `command` on `target` (user@host) through `port`: the key `keyFile`, batch mode
 * (no prompt), no host key checked or kept; `options` are further `-o` settings.
 */
export function sshArgs(keyFile: string, port: number, options: string[], target: string, command: string): string[] {
  const base = ['-i', keyFile, '-p', String(port), '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null'];
  return [...base, ...options.flatMap((o) => ['-o', o]), target, command];
}
