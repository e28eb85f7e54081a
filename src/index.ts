/**
 * `dre`: the idiomatic API. Each driver takes container names and throws DreError (with the spec's
 * dre_err_t in `code`); the spec-layer names live in `dre/app`, `dre/sys` and `dre/daware`.
 *
 *   import { app } from 'dre';
 *   await app.create('web', { base: null });
 *   await app.start('web');
 */
export { appDriver as app, type AppConfig, type AppDriver } from './app/driver.js';
export type { DebianBaseOptions } from './app/debian.js';
export type { ImportFormat, ImportOptions } from './app/imports.js';
export type { PushOptions } from './app/files.js';
export type { ExportOptions } from './core/archive.js';
export { sysDriver as sys, type SysConfig, type SysDriver } from './sys/driver.js';
export { DRE_ERR, DreError, errName, isDreError, type DreErrName, type DreErrCode } from './core/errors.js';
export { RESOURCE, STATUS, statusName, type Driver, type Resource, type ResourceType, type Status, type StopOptions } from './core/driver.js';
