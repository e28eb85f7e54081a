/**
 * SSH inside application containers: Debian's dropbear (with the shared libraries it links, since the
 * busybox base has no libc) in the default base, host keys made per container at its first start,
 * and the keys allowed to log in as root.
 */
import { appendFileSync, chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { dreError } from '../core/errors.js';
import { lastLines, run } from '../core/run.js';

export const DROPBEAR = '/usr/sbin/dropbear';
const DROPBEARKEY = '/usr/bin/dropbearkey';

// Started by busybox init after rcS; keys live in the container's own upper layer, so each has its own.
const DROPBEAR_INIT = `#!/bin/sh
mkdir -p /etc/dropbear
[ -s /etc/dropbear/dropbear_ed25519_host_key ] || dropbearkey -t ed25519 -f /etc/dropbear/dropbear_ed25519_host_key >/dev/null 2>&1
exec dropbear -s -p 22 -r /etc/dropbear/dropbear_ed25519_host_key
`;

/** The inittab line that starts the SSH server at boot, after rcS (dropbear forks into the background). */
const DROPBEAR_INITTAB = '::sysinit:/etc/init.d/dropbear\n';

/** The files a dynamically linked program needs: itself, its loader and libraries (from ldd). */
async function linkedFiles(binary: string): Promise<string[]> {
  const r = await run('ldd', [binary], { timeoutMs: 10_000 });
  if (r.code !== 0) throw new Error(`ldd ${binary}: ${lastLines(r.stderr)}`);
  const libs = [...r.stdout.matchAll(/(?:=>\s*)?(\/\S+)\s+\(0x/g)].map((m) => m[1]);
  return [binary, ...libs];
}

/**
 * Puts dropbear into a base root file system, with the libraries it links copied to the same paths,
 * an nsswitch.conf that needs no NSS modules, and its boot script. Missing dropbear: the base has no SSH.
 */
export async function installDropbear(root: string): Promise<void> {
  if (!existsSync(DROPBEAR) || !existsSync(DROPBEARKEY)) return;
  const files = new Set([...(await linkedFiles(DROPBEAR)), ...(await linkedFiles(DROPBEARKEY))]);
  for (const file of files) {
    const to = join(root, file);
    mkdirSync(dirname(to), { recursive: true, mode: 0o755 });
    copyFileSync(file, to); // follows symlinks: the library's real content under the name ldd printed
    chmodSync(to, 0o755);
  }
  writeFileSync(join(root, 'etc/nsswitch.conf'), 'passwd: files\ngroup: files\nshadow: files\n');
  writeFileSync(join(root, 'etc/shells'), '/bin/sh\n/bin/ash\n');
  writeFileSync(join(root, 'etc/init.d/dropbear'), DROPBEAR_INIT, { mode: 0o755 });
  chmodSync(join(root, 'etc/init.d/dropbear'), 0o755);
  appendFileSync(join(root, 'etc/inittab'), DROPBEAR_INITTAB);
}

/** The public keys of the host user (~/.ssh/id_*.pub), used when a container's config names none. */
function hostUserKeys(): string {
  const dir = join(homedir(), '.ssh');
  return ['id_ed25519.pub', 'id_ecdsa.pub', 'id_rsa.pub']
    .map((f) => {
      try {
        return readFileSync(join(dir, f), 'utf8').trim();
      } catch {
        return '';
      }
    })
    .filter(Boolean)
    .join('\n');
}

/** Checks a caller's public key text: one or more `TYPE BASE64 [comment]` lines. */
export function checkPublicKey(text: unknown, what: string): string {
  if (typeof text !== 'string') throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what}: the SSH key must be a string`);
  const lines = text.trim().split('\n').filter(Boolean);
  if (lines.length === 0 || !lines.every((l) => /^(ssh|ecdsa|sk)-[A-Za-z0-9@.-]+ [A-Za-z0-9+/=]+( .*)?$/.test(l.trim()))) {
    throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what}: the SSH key is not an OpenSSH public key line`);
  }
  return lines.map((l) => l.trim()).join('\n');
}

/** Writes /root/.ssh/authorized_keys into a container's upper layer: the given key, else the host user's. */
export function writeAuthorizedKeys(upper: string, key: string | undefined): void {
  const keys = key ?? hostUserKeys();
  if (!keys) return;
  mkdirSync(join(upper, 'root/.ssh'), { recursive: true, mode: 0o700 });
  chmodSync(join(upper, 'root'), 0o700);
  chmodSync(join(upper, 'root/.ssh'), 0o700);
  writeFileSync(join(upper, 'root/.ssh/authorized_keys'), keys + '\n', { mode: 0o600 });
}
