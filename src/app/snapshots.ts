import { dreError } from '../core/errors.js';
// Placeholder until issue 4 lands: every call fails with the code a failed operation gives.
const todo = (code: 'DRE_ERR_SAVE_SNAPSHOT_FAILED' | 'DRE_ERR_LOAD_SNAPSHOT_FAILED' | 'DRE_ERR_REMOVE_SNAPSHOT_FAILED' | 'DRE_ERR_COMMIT_SNAPSHOT_FAILED' | 'DRE_ERR_REMOVE_BASE_FAILED', what: string) =>
  Promise.reject(dreError(code, `${what}: not available in this build`));
export const saveSnapshot = (name: string, tag: string): Promise<void> => todo('DRE_ERR_SAVE_SNAPSHOT_FAILED', `save snapshot ${tag} of ${name}`);
export const loadSnapshot = (name: string, tag: string): Promise<void> => todo('DRE_ERR_LOAD_SNAPSHOT_FAILED', `load snapshot ${tag} of ${name}`);
export const removeSnapshot = (name: string, tag: string): Promise<void> => todo('DRE_ERR_REMOVE_SNAPSHOT_FAILED', `remove snapshot ${tag} of ${name}`);
export const listSnapshots = (name: string): Promise<string[]> => todo('DRE_ERR_LOAD_SNAPSHOT_FAILED', `list snapshots of ${name}`) as never;
export const commitSnapshot = (name: string, tag: string, base: string): Promise<void> => todo('DRE_ERR_COMMIT_SNAPSHOT_FAILED', `commit ${tag} of ${name} as ${base}`);
export const listBases = (): Promise<string[]> => todo('DRE_ERR_REMOVE_BASE_FAILED', 'list bases') as never;
export const removeBase = (base: string): Promise<void> => todo('DRE_ERR_REMOVE_BASE_FAILED', `remove base ${base}`);
export const checkpoint = (name: string, tag: string): Promise<void> => todo('DRE_ERR_SAVE_SNAPSHOT_FAILED', `checkpoint ${tag} of ${name}`);
export const restart = (name: string, tag: string): Promise<void> => todo('DRE_ERR_LOAD_SNAPSHOT_FAILED', `restart ${name} from ${tag}`);
export const listCheckpoints = (name: string): Promise<string[]> => todo('DRE_ERR_LOAD_SNAPSHOT_FAILED', `list checkpoints of ${name}`) as never;
export const removeCheckpoint = (name: string, tag: string): Promise<void> => todo('DRE_ERR_REMOVE_SNAPSHOT_FAILED', `remove checkpoint ${tag} of ${name}`);
