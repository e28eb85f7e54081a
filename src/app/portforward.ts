/** The SSH ports of application containers: the kernel's forwards of core/portforward.ts. */
export { closePort, portHookLines, portTable, SSH_PORT } from '../core/portforward.js';
