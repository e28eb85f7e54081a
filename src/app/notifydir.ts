/**
 * The NOTIFY_SOCKET of an application container (systemd's notify protocol): a directory on the host,
 * containerRunDir/notify, bind-mounted read-only at /run/dre-notify inside the container, where the
 * relay of dred (c/notify, src/daemon/notify.ts) binds the socket `notify`. The container's
 * environment names it (lxc.environment), so unmodified programs started by its init find it. A
 * read-only mount still lets processes send to the socket; it keeps them from replacing it.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { containerRunDir } from '../core/paths.js';
import { field } from './dawareruntime.js';

/** Where the container sees the socket (its NOTIFY_SOCKET). */
export const NOTIFY_SOCKET_IN_CONTAINER = '/run/dre-notify/notify';

/** The host directory the container sees as /run/dre-notify. */
export const notifyDir = (name: string) => join(containerRunDir('app', name), 'notify');

/** The socket the relay binds on the host. */
export const notifySocketPath = (name: string) => join(notifyDir(name), 'notify');

/** Makes the directory (before a start: the bind needs it; the relay binds into it). World-searchable: the container's root is an unprivileged uid. */
export function prepareNotifyDir(name: string): void {
  mkdirSync(containerRunDir('app', name), { recursive: true, mode: 0o700 });
  mkdirSync(notifyDir(name), { mode: 0o755, recursive: true });
}

/** The LXC config lines (after the /run tmpfs of the D-Aware lines): the read-only bind and the environment. */
export function notifyConfigLines(name: string): string[] {
  return [
    "# sd_notify: dred's relay binds the socket in this directory (absent without a daemon).",
    `lxc.mount.entry = ${field(notifyDir(name))} run/dre-notify none bind,ro,nosuid,nodev,noexec,create=dir,optional 0 0`,
    `lxc.environment = NOTIFY_SOCKET=${NOTIFY_SOCKET_IN_CONTAINER}`,
  ];
}
