/**
 * Debian VMs: the Debian VM base build with a cold package cache (an empty one of its own, once) and a warm one (the machine's shared .deb cache,
 * filled by a first build if it was empty) against raw mmdebstrap of the same plan with the same
 * cache; start-to-ready of a Debian VM (D-RE's start until the guest agent, ordered after systemd's
 * multi-user.target, answers) against raw QEMU booting the same image with the same command line
 * until the same agent answers; D-RE's graceful stop (systemd's own shutdown). Interleaved per round,
 * medians and ratios, under a temporary root removed after. Both guests have booted once before the
 * rounds (the first boot makes SSH host keys and the machine id).
 */
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { pair, report, timeCold, timeIt } from './stats.js';
import { RawGuest, sysBenchRoot } from './sys.js';

const BUILD_ROUNDS = Number(process.env.BENCH_DEBIAN_BUILDS ?? 2);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CPUS = Number(process.env.BENCH_CPUS ?? 2);

export async function bench(): Promise<void> {
  const { tmp, accel, restore } = sysBenchRoot();
  const { sysDriver: sys } = await import('../src/sys/driver.js');
  const { sysDebianBuildPlan } = await import('../src/sys/debian.js');
  const { debCacheDir, mmdebstrapArgs } = await import('../src/core/debian.js');
  const times: Record<string, number[]> = {};
  const add = (k: string, ms: number) => (times[k] ??= []).push(ms);
  const name = `bench-deb-${process.pid}`;
  const raw = new RawGuest(join(tmp, 'raw'), 'debian', CPUS);
  console.log(`accelerator: ${accel}; ${BUILD_ROUNDS} warm builds, ${ROUNDS} boots each; ${CPUS} vCPUs, 256 MiB guests, no NIC`);
  try {
    // Cold: an empty cache of its own, once (a download of the whole package set).
    add('build cold', await timeCold(join(tmp, 'cold-cache'), () => sys.buildDebianBase('cold', {})));
    await sys.removeBase('cold');
    add('first build', await timeIt(() => sys.buildDebianBase('debian', {}))); // fills the machine's cache if it was empty
    const plan = sysDebianBuildPlan({});
    for (let i = 0; i < BUILD_ROUNDS; i++) {
      const out = join(tmp, `raw-build-${i}`);
      await pair(
        i,
        async () => {
          add('build warm', await timeIt(() => sys.buildDebianBase(`warm${i}`, {})));
          await sys.removeBase(`warm${i}`);
        },
        async () =>
          add(
            'raw build warm',
            await timeIt(() => execFileSync('mmdebstrap', mmdebstrapArgs(plan, out, debCacheDir()), { stdio: 'pipe', timeout: 1_800_000 })),
          ),
      );
      rmSync(out, { recursive: true, force: true });
    }

    report('Debian VM base build, cold cache', times['build cold'], undefined);
    report('Debian VM base, first build', times['first build'], undefined);
    report('Debian VM base build, warm cache', times['build warm'], times['raw build warm']);

    await sys.create(name, { base: 'debian', network: false, cpus: CPUS });
    await raw.makeDisk();
    // The first boots (host keys, machine id) are not timed.
    await sys.start(name);
    await sys.stop(name);
    await raw.start(accel);
    await raw.quit();
    for (let i = 0; i < ROUNDS; i++) {
      await pair(
        i,
        async () => {
          add('start to ready', await timeIt(() => sys.start(name)));
          add('graceful stop', await timeIt(() => sys.stop(name, { timeoutMs: 90_000 })));
        },
        async () => {
          add('raw start to ready', await timeIt(() => raw.start(accel)));
          await raw.quit();
        },
      );
    }
    report('Debian VM start to ready', times['start to ready'], times['raw start to ready'], '<= 1.1x raw');
    report('graceful stop (systemd shutdown)', times['graceful stop'], undefined);
  } finally {
    await raw.quit();
    await sys.stop(name, { timeoutMs: 0 }).catch(() => {});
    await sys.destroy(name).catch(() => {});
    await restore();
  }
}
