import { dreError } from './errors.js';

/** Containers need root (namespaces, cgroups, mounts): anyone else gets DRE_ERR_PERMISSION_DENIED. */
export function requireRoot(what: string): void {
  if (process.getuid?.() !== 0) {
    throw dreError('DRE_ERR_PERMISSION_DENIED', `${what}: D-RE must run as root (uid 0); run it with sudo`);
  }
}
