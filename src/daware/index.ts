/**
 * `dre/daware`: the D-Aware library of spec chapter 2, for programs inside application containers.
 * It stands apart from the host drivers: it needs only Node, koffi (for libc's syslog) and, for
 * termination callbacks, the registry D-RE mounts at /run/daware.
 */
export * from './constants.js';
export {
  daware_log,
  daware_log_open,
  daware_log_close,
  daware_log_set_format,
  DLOG,
  DLOG_EMERG,
  DLOG_ALERT,
  DLOG_CRIT,
  DLOG_ERR,
  DLOG_WARNING,
  DLOG_NOTICE,
  DLOG_INFO,
  DLOG_DEBUG,
} from './log.js';
export {
  daware_termination_register_callback,
  daware_termination_unregister_callback,
  DAWARE_REGISTRY_DIR,
  type DTermination,
  type DTerminationCallback,
} from './termination.js';
export { sprintf } from './printf.js';
