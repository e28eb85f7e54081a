// The source of api/openapi.json: node api/openapi.src.mjs > api/openapi.json (test/daemon/api.test checks they agree).
const name = { type: 'string' };
const ref = (n) => ({ $ref: `#/components/schemas/${n}` });
const P = (n, desc, schema = { type: 'string' }) => ({ name: n, in: 'path', required: true, description: desc, schema });
const kind = P('kind', 'Container kind: app (LXC) or sys (QEMU)', { type: 'string', enum: ['app', 'sys'] });
const cname = P('name', 'Container name');
const tag = P('tag', 'Snapshot or checkpoint tag');
const cgroup = P('cgroup', 'Control group inside the container');
const pidP = (n) => P(n, 'Process id', { type: 'integer', minimum: 1 });
const ok = (schema, d = 'Done') => ({ 200: { description: d, content: { 'application/json': { schema } } } });
const empty = ok({ type: 'object', additionalProperties: false }, 'Done');
const op202 = { 202: { description: 'Background operation started', content: { 'application/json': { schema: ref('Operation') } } } };
const errors = { default: { description: 'Failure: the spec error code', content: { 'application/json': { schema: ref('Error') } } } };
const body = (schema) => ({ required: true, content: { 'application/json': { schema } } });
const obj = (props, required = Object.keys(props)) => ({ type: 'object', additionalProperties: false, required, properties: props });
const route = (operationId, summary, parameters, responses, requestBody) => ({ operationId, summary, ...(parameters.length ? { parameters } : {}), ...(requestBody ? { requestBody } : {}), responses: { ...responses, ...errors } });
const names = (key) => ok(obj({ [key]: { type: 'array', items: { type: 'string' } } }));
const paths = {
  '/1.0': { get: route('getServer', 'The daemon: API version, its pid, root and run dir', [], ok(ref('Server'))) },
  '/1.0/events': { get: route('getEvents', 'Server-Sent Events: every state change of every container, whoever caused it', [], { 200: { description: 'An endless text/event-stream', content: { 'text/event-stream': { schema: { type: 'string' } } } } }) },
  '/1.0/operations': { get: route('listOperations', 'Background operations, running and recently finished', [], ok(obj({ operations: { type: 'array', items: ref('Operation') } }))) },
  '/1.0/operations/{id}': { get: route('getOperation', 'One operation', [P('id', 'Operation id')], ok(ref('Operation'))) },
  '/1.0/operations/{id}/wait': { get: route('waitOperation', 'The operation once it has ended, or after `timeout` seconds (status still running)', [P('id', 'Operation id'), { name: 'timeout', in: 'query', required: false, schema: { type: 'integer', minimum: 0, maximum: 600, default: 30 } }], ok(ref('Operation'))) },
  '/1.0/{kind}/containers': {
    get: route('listContainers', 'Names of the containers of a kind', [kind], names('containers')),
    post: route('createContainer', 'Creates a container (may build its base first)', [kind], op202, body(obj({ name, config: { anyOf: [ref('AppConfig'), ref('SysConfig')], description: 'AppConfig for app, SysConfig for sys' } }, ['name']))),
  },
  '/1.0/{kind}/containers/{name}': {
    get: route('getContainer', 'A container: status and what its record holds', [kind, cname], ok(ref('Container'))),
    delete: route('destroyContainer', 'Destroys a stopped container and its files', [kind, cname], empty),
  },
  '/1.0/{kind}/containers/{name}/state': {
    get: route('getState', "The container's status (the spec's status values)", [kind, cname], ok(ref('State'))),
    put: route('changeState', 'Starts, stops, suspends or resumes the container', [kind, cname], ok(ref('State')), body(obj({ action: { type: 'string', enum: ['start', 'stop', 'suspend', 'resume'] }, timeoutMs: { type: 'integer', minimum: 0, maximum: 3600000 }, waitReady: { type: 'boolean', description: 'start only: answer once the container is ready (its first passing probe, or READY=1 on its NOTIFY_SOCKET); past readyTimeoutMs DRE_ERR_DEVICE_BUSY, the container left running' }, readyTimeoutMs: { type: 'integer', minimum: 1, maximum: 3600000 } }, ['action']))),
  },
  '/1.0/{kind}/containers/{name}/policy': {
    get: route('getSupervision', "The container's recovery policy, its snapshots marked good, and the supervisor's view of its health", [kind, cname], ok(ref('Supervision'))),
    put: route('setPolicy', 'Sets the recovery policy (fields left out take their defaults), or clears it with {"policy": null}', [kind, cname], empty, body({ oneOf: [ref('PolicyInput'), obj({ policy: { type: 'null' } })] })),
  },
  '/1.0/{kind}/containers/{name}/snapshots/{tag}/good': { post: route('markGood', 'Marks a snapshot good: the target of rollback:last-good', [kind, cname, tag], empty) },
  '/1.0/{kind}/containers/{name}/exec': { post: route('exec', 'Runs a command inside the running container and returns its status and output (base64)', [kind, cname], ok(obj({ status: { type: 'integer' }, stdout: { type: 'string', contentEncoding: 'base64' }, stderr: { type: 'string', contentEncoding: 'base64' } })), body(obj({ argv: { type: 'array', items: { type: 'string' } }, timeoutMs: { type: 'integer', minimum: 1, maximum: 3600000 } }, ['argv']))) },
  '/1.0/{kind}/containers/{name}/pid': { get: route('getPid', "The host PID of the running container (LXC: its init; QEMU: the emulator)", [kind, cname], ok(obj({ pid: { type: 'integer' } }))) },
  '/1.0/{kind}/containers/{name}/snapshots': {
    get: route('listSnapshots', 'Tags of the saved snapshots', [kind, cname], names('snapshots')),
    post: route('saveSnapshot', 'Saves a snapshot of the stopped container', [kind, cname], empty, body(obj({ tag: name }))),
  },
  '/1.0/{kind}/containers/{name}/snapshots/{tag}': { delete: route('removeSnapshot', 'Removes a snapshot', [kind, cname, tag], empty) },
  '/1.0/{kind}/containers/{name}/snapshots/{tag}/load': { post: route('loadSnapshot', 'Loads a snapshot into the stopped container', [kind, cname, tag], empty) },
  '/1.0/{kind}/bases': {
    get: route('listBases', 'Names of the Base Images', [kind], names('bases')),
    post: route('commitSnapshot', "Makes a Base Image from a container's snapshot", [kind], op202, body(obj({ name, container: name, snapshot: name }))),
  },
  '/1.0/{kind}/base-builds': {
    post: route('buildBase', 'Builds a Base Image in the background, with progress: flavour debian (mmdebstrap; app: a systemd root, sys: a Debian VM base; NAME default debian), sys flavour default (the built-in one, rebuilt)', [kind], op202, body(obj({ flavour: { type: 'string', enum: ['debian', 'default'] }, name, release: { type: 'string', pattern: '^[a-z][a-z0-9.-]{0,31}$' }, include: { type: 'array', maxItems: 256, items: { type: 'string', pattern: '^[a-z0-9][a-z0-9+.-]{0,99}$' } } }, ['flavour']))),
  },
  '/1.0/{kind}/bases/{base}': { delete: route('removeBase', 'Removes a Base Image no container uses', [kind, P('base', 'Base Image name')], empty) },
  '/1.0/{kind}/containers/{name}/checkpoints': {
    get: route('listCheckpoints', 'Tags of the checkpoints', [kind, cname], names('checkpoints')),
    post: route('checkpoint', 'Checkpoints the running state', [kind, cname], op202, body(obj({ tag: name }))),
  },
  '/1.0/{kind}/containers/{name}/checkpoints/{tag}': { delete: route('removeCheckpoint', 'Removes a checkpoint', [kind, cname, tag], empty) },
  '/1.0/{kind}/containers/{name}/checkpoints/{tag}/restart': { post: route('restart', 'Restarts the container from a checkpoint', [kind, cname, tag], op202) },
  '/1.0/{kind}/containers/{name}/cgroups': { post: route('createCgroup', "Creates a control group inside the container's group", [kind, cname], empty, body(obj({ cgroup: name }))) },
  '/1.0/{kind}/containers/{name}/cgroups/{cgroup}': { delete: route('destroyCgroup', 'Destroys a control group', [kind, cname, cgroup], empty) },
  '/1.0/{kind}/containers/{name}/cgroups/{cgroup}/pids': { post: route('bindPid', 'Moves a host process of the container into the group', [kind, cname, cgroup], empty, body(obj({ pid: { type: 'integer' } }))) },
  '/1.0/{kind}/containers/{name}/cgroups/{cgroup}/pids/{pid}': { delete: route('unbindPid', "Moves the process back to the container's own group", [kind, cname, cgroup, pidP('pid')], empty) },
  '/1.0/app/containers/{name}/cgroups/{cgroup}/vpids': { post: route('bindVpid', "Binds a process by its PID inside the container's namespace", [cname, cgroup], empty, body(obj({ vpid: { type: 'integer' } }))) },
  '/1.0/app/containers/{name}/cgroups/{cgroup}/vpids/{vpid}': { delete: route('unbindVpid', 'Unbinds a process by its PID inside the container', [cname, cgroup, pidP('vpid')], empty) },
  '/1.0/{kind}/containers/{name}/cgroups/{cgroup}/limits': { put: route('setResource', 'Sets a limit on the group', [kind, cname, cgroup], empty, body(ref('Resource'))) },
  '/1.0/{kind}/containers/{name}/cgroups/{cgroup}/limits/{type}': { delete: route('unsetResource', 'Removes a limit of that type from the group', [kind, cname, cgroup, P('type', 'Resource type: 1 CPU, 2 CPU_CORE, 3 MEMORY, 4 MEMSW', { type: 'integer', minimum: 1, maximum: 4 })], empty) },
  '/1.0/{kind}/containers/{name}/usage': { get: route('getResource', "What the kernel measures for the group holding `pid`", [kind, cname, { name: 'pid', in: 'query', required: true, schema: { type: 'integer' } }, { name: 'type', in: 'query', required: true, schema: { type: 'integer', minimum: 1, maximum: 4 } }], ok(ref('Resource'))) },
  '/1.0/app/containers/{name}/registered-pids': {
    get: route('registeredPids', 'Processes registered for D-Aware termination callbacks', [cname], ok(obj({ pids: { type: 'array', items: obj({ pid: { type: 'integer' }, vpid: { type: 'integer' } }) } }))),
    post: route('registerPid', 'Registers a process by host PID or by PID inside the container', [cname], empty, body({ oneOf: [obj({ pid: { type: 'integer' } }), obj({ vpid: { type: 'integer' } })] })),
  },
  '/1.0/app/containers/{name}/registered-pids/{pid}': { delete: route('unregisterPid', 'Unregisters a process by host PID', [cname, pidP('pid')], empty) },
  '/1.0/app/containers/{name}/registered-vpids/{vpid}': { delete: route('unregisterVpid', 'Unregisters a process by PID inside the container', [cname, pidP('vpid')], empty) },
  '/1.0/sys/containers/{name}/share': {
    post: route('share', "Moves the container's disk to the NFS share", [cname], empty),
    delete: route('unshare', "Brings the container's disk back from the share", [cname], empty),
  },
  '/1.0/sys/containers/{name}/lease': {
    get: route('leaseHolder', "Which host holds the shared container's lease (null: none)", [cname], ok(obj({ holder: { oneOf: [{ type: 'object' }, { type: 'null' }] } }))),
    delete: route('breakLease', 'Breaks the lease of a stopped shared container, whoever holds it; returns the holder it had', [cname], ok(obj({ holder: { oneOf: [{ type: 'object' }, { type: 'null' }] } }))),
  },
  '/1.0/sys/nfs': { put: route('setNfsConfig', 'Sets the NFS server shared system containers live on (nfs://HOST/EXPORT)', [], empty, body(obj({ url: name }))) },
  '/1.0/sys/containers/{name}/migrate': { post: route('migrate', 'Live-migrates the running container to a host waiting for it on `port`; without `port`, to the cluster member `target`, whose daemon is asked to wait for it', [cname], op202, body(obj({ target: name, port: { type: 'integer' } }, ['target']))) },
  '/1.0/sys/immigrations': { post: route('immigrate', 'Waits here for a container migrating in on `port`; a copied disk\'s container takes over the `address` and `mac` its guest has on the source', [], op202, body(obj({ name, port: { type: 'integer' }, address: { type: 'string', maxLength: 15 }, mac: { type: 'string', pattern: '^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$' } }, ['name', 'port']))) },
};
const nullable = (s) => ({ oneOf: [s, { type: 'null' }] });
const schemas = {
  Error: obj({ error: { type: 'string', pattern: '^DRE_ERR_' }, code: { type: 'integer' }, message: { type: 'string' } }),
  Server: { type: 'object', required: ['api_version', 'server', 'version', 'pid', 'root', 'rundir'], properties: { api_version: { const: '1.0' }, server: { const: 'dred' }, version: { type: 'string' }, pid: { type: 'integer' }, root: { type: 'string' }, rundir: { type: 'string' } } },
  Operation: { type: 'object', required: ['id', 'description', 'kind', 'name', 'status', 'progress', 'created_at', 'updated_at', 'result', 'error'], properties: { id: { type: 'string' }, description: { type: 'string' }, kind: { enum: ['app', 'sys'] }, name: { type: 'string' }, status: { enum: ['running', 'success', 'failure'] }, progress: nullable({ type: 'object', properties: { stage: { type: 'string' }, percent: { type: 'number' } } }), created_at: { type: 'string', format: 'date-time' }, updated_at: { type: 'string', format: 'date-time' }, result: {}, error: nullable(ref('Error')) } },
  AppConfig: { type: 'object', additionalProperties: false, properties: { base: nullable(name), port: nullable({ type: 'integer' }), network: { type: 'boolean', description: 'false: loopback only' }, sshKey: { type: 'string', description: 'OpenSSH public key(s) allowed to log in as root' }, privileged: { type: 'boolean', description: 'no user namespace (unprivileged by default)' } } },
  SysConfig: { type: 'object', additionalProperties: false, properties: { memorySize: nullable({ type: 'integer' }), base: nullable(name), rootfs: nullable(name), accel: nullable({ enum: ['kvm', 'tcg'] }), network: nullable({ type: 'boolean', description: 'false: no NIC (loopback only)' }), port: nullable({ type: 'integer', description: "host port forwarded to the guest's port 22" }), cpus: nullable({ type: 'integer', description: 'virtual CPUs (default 1)' }), diskSize: nullable({ type: 'integer', description: "disk size in MiB, at least the base's" }) } },
  PolicyInput: { type: 'object', additionalProperties: false, properties: { probe: nullable({ type: 'object', additionalProperties: false, required: ['type'], properties: { type: { enum: ['tcp', 'http', 'exec', 'heartbeat'] }, port: { type: 'integer' }, command: { type: 'string', description: 'exec probes: run by /bin/sh -c inside the container, healthy on status 0 within timeoutMs' }, path: { type: 'string' }, intervalMs: { type: 'integer' }, timeoutMs: { type: 'integer' }, retries: { type: 'integer' }, startPeriodMs: { type: 'integer' } } }), onUnhealthy: { type: 'string', description: 'none, restart, rollback:TAG, rollback:last-good, restart-from:CHECKPOINT (sys)' }, onExit: { type: 'string' }, max: { type: 'integer' }, windowMs: { type: 'integer' }, autostart: { type: 'boolean' }, failover: { type: 'boolean', description: 'shared system containers in a cluster: started on another healthy host when its host is lost' }, markGoodAfterMs: { type: ['integer', 'null'], minimum: 100, maximum: 604800000, description: 'once healthy this long after a start or recovery, the newest snapshot older than that start is marked good' } } },
  Supervision: { type: 'object', required: ['policy', 'good', 'health'], properties: { policy: { oneOf: [{ type: 'object' }, { type: 'null' }] }, good: { type: 'array', items: { type: 'string' } }, health: { oneOf: [{ type: 'object', properties: { state: { enum: ['unsupervised', 'starting', 'healthy', 'unhealthy', 'recovering', 'failed', 'stopped'] } } }, { type: 'null' }] } } },
  State: obj({ status: { enum: [11, 12, 13, 14] }, statusName: { enum: ['STOP', 'RUNNING', 'SUSPENDED', 'BUSY'] }, ready: { type: 'object', description: 'a start with waitReady: what said it is ready (probe or notify) and after how many ms', properties: { via: { enum: ['probe', 'notify'] }, ms: { type: 'integer' } } } }, ['status', 'statusName']),
  Container: { type: 'object', required: ['name', 'kind', 'status', 'statusName', 'info'], properties: { name: { type: 'string' }, kind: { enum: ['app', 'sys'] }, status: { enum: [11, 12, 13, 14] }, statusName: { type: 'string' }, info: { type: 'object' } } },
  Resource: { type: 'object', additionalProperties: false, required: ['type'], properties: { type: { type: 'integer' }, percent: { type: 'number' }, cores: { type: 'string' }, bytes: { type: 'integer' } }, description: 'CPU (1): percent of one CPU; CPU_CORE (2): cores, a cpuset list such as 0-1; MEMORY (3), MEMSW (4): bytes' },
};
const doc = { openapi: '3.1.0', info: { title: 'D-RE daemon (dred) API', version: '1.0', description: 'The idiomatic D-RE API as REST over HTTP/1.1 on the unix socket $DRE_RUNDIR/dred.sock (root only), and optionally TCP with TLS and trusted client certificates. Errors: {error, code, message} with code the spec\'s dre_err_t. Long work answers 202 with an Operation to poll or wait on.' }, paths, components: { schemas } };
process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
