import { closeSync, openSync, readFileSync } from 'node:fs';
import { dreError } from '../core/errors.js';

export type Accel = 'kvm' | 'tcg';

/** Checks an accelerator name from a config or DRE_SYS_ACCEL. */
export function checkAccel(value: unknown, what: string): Accel {
  if (value === 'kvm' || value === 'tcg') return value;
  throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what} ${JSON.stringify(value)} is not "kvm" or "tcg"`);
}

/** Why KVM cannot be used here, or undefined when it can (/dev/kvm opens and the CPU has vmx/svm). */
export function kvmUnavailable(): string | undefined {
  try {
    closeSync(openSync('/dev/kvm', 'r+'));
  } catch (e) {
    return `/dev/kvm does not open (${(e as NodeJS.ErrnoException).code})`;
  }
  const flags = /^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '';
  if (!/\b(vmx|svm)\b/.test(flags)) return 'the CPU has no vmx/svm flag in /proc/cpuinfo';
  return undefined;
}

/**
 * The accelerator for a run: DRE_SYS_ACCEL when set, else the container's own choice. KVM without
 * hardware virtualization is DRE_ERR_NO_VT; software emulation is only ever used when asked for.
 */
export function chooseAccel(what: string, configured: Accel): Accel {
  const env = process.env.DRE_SYS_ACCEL;
  const want = env ? checkAccel(env, 'DRE_SYS_ACCEL') : configured;
  if (want === 'tcg') return 'tcg';
  const why = kvmUnavailable();
  if (why) {
    throw dreError(
      'DRE_ERR_NO_VT',
      `${what}: no hardware virtualization: ${why}; to run it under software emulation (slow), set DRE_SYS_ACCEL=tcg or create the container with accel tcg (dre-sys create NAME --accel tcg)`,
    );
  }
  return 'kvm';
}
