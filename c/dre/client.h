/*
 * client.h: what libdreapp and libdresys share (internal, not installed): the HTTP client of dred's
 * socket, the argument checks of the TypeScript spec layer, and the registry of handles and lists.
 */
#ifndef DRE_CLIENT_H
#define DRE_CLIENT_H

#include <stddef.h>
#include <json-c/json.h>
#include "dre_common.h"

/* The longest name (src/core/names.ts NAME_MAX). */
#define DRE__NAME_MAX 64

/* A name argument: NULL -> NULL_POINTER, over 64 -> REQUEST_TOO_LONG, malformed -> INVALID_ARGUMENT, else 0. */
int dre__check_name(const char *name);
/* A handle's fields: absent -> NULL_POINTER, wrong type (or closed) -> INVALID_ARGUMENT, then its name. */
int dre__check_handle(int present, int type, int want, const char *name);
/* A PID argument (src/spec/common.ts pidArg): 1..2^31-1, else INVALID_ARGUMENT. */
int dre__check_pid(int pid);

/*
 * One request to dred: METHOD, a path built from FMT (%s: a path segment, percent-encoded; %d: an
 * int; %q: a string put in as it is) and an optional JSON body (taken over, freed here). Waits for a
 * background operation to end. Returns 0 with *reply set (if reply is not NULL; json_object_put it),
 * the daemon's dre_err_t, or DRE_ERR_NO_SOCKET_AVAILABLE when no daemon answers.
 */
int dre__request(const char *method, json_object *body, json_object **reply, const char *fmt, ...);

/* {"KEY": "VALUE"} and {"KEY": N}. */
json_object *dre__obj_str(const char *key, const char *value);
json_object *dre__obj_int(const char *key, int value);

/* Memory handed to the caller: allocated and tracked here, so that a release tells ours from a stale pointer. */
void *dre__handle_alloc(size_t size);
/* 1 when H came from dre__handle_alloc and is open (then it is retired for reuse), else 0. */
int dre__handle_retire(const void *h);
void dre__track(void *p);
/* 1 when P was tracked (and is no longer), else 0. */
int dre__untrack(void *p);

/* The NULL-terminated name list under KEY of REPLY (frees REPLY); 0 or a dre_err_t. */
int dre__names(json_object *reply, const char *key, dre_list_t *list);
/* GET a name list: PATH FMT with one %s (or none) for ARG. */
int dre__get_names(dre_list_t *list, const char *key, const char *fmt, const char *arg);
int dre__release_names(dre_list_t list);

/*
 * The spec's resource struct in neutral form (dre_app_resource_value_t and dre_sys_resource_value_t
 * are printed twice with the same layout): type, and the one union member that type uses.
 */
struct dre__resource {
    int type;
    int number;        /* parcent or bytes */
    char *cores;
};
/* The body of set_resource (src/spec/common.ts toResource): NULL when type is not 1-4. */
json_object *dre__resource_body(const struct dre__resource *r);
/* GET usage of PID (src/spec/common.ts fillResource): fills r->number or r->cores (malloc'd). */
int dre__get_resource(const char *kind, const char *name, int pid, struct dre__resource *r);

/* ---- operations of both kinds (ops.c): KIND is "app" or "sys", NAME a checked container name ---- */

/* Both spec handles are { enum type; char *name; } (checked with static asserts in app.c and sys.c). */
struct dre__handle {
    int type;
    char *name;
};

/* Checks handle H of TYPE (src/spec/common.ts handleName); on success N is its container's name. */
#define DRE__HANDLE(h, want, n)                                                              \
    const char *n = (h) != NULL ? (h)->name : NULL;                                          \
    DRE__CHECK(dre__check_handle((h) != NULL, (h) != NULL ? (int)(h)->type : 0, (want), n))
#define DRE__CHECK(expr)          \
    do {                          \
        int bad_ = (expr);        \
        if (bad_) return bad_;    \
    } while (0)

/* The neutral form of a spec resource struct R, and back (the union member its type uses). */
#define DRE__RESOURCE_IN(r)                                                                                   \
    ((struct dre__resource){ (int)(r)->type,                                                                 \
                             (r)->type == 1   ? (r)->udata.cpu.parcent                                       \
                             : (r)->type == 3 ? (r)->udata.mem.usage_in_bytes                                \
                             : (r)->type == 4 ? (r)->udata.mem.memsw_usage_in_bytes                          \
                                              : 0,                                                           \
                             (r)->type == 2 ? (r)->udata.cpu.cores : NULL })
#define DRE__RESOURCE_OUT(r, x)                                         \
    do {                                                                \
        if ((x).type == 1) (r)->udata.cpu.parcent = (x).number;         \
        else if ((x).type == 2) (r)->udata.cpu.cores = (x).cores;       \
        else if ((x).type == 3) (r)->udata.mem.usage_in_bytes = (x).number; \
        else (r)->udata.mem.memsw_usage_in_bytes = (x).number;          \
    } while (0)

int dre__create(const char *kind, const char *name, json_object *config);
int dre__destroy(const char *kind, const char *name);
struct dre__handle *dre__open(const char *kind, int type, const char *name);
int dre__close(const struct dre__handle *h);
int dre__change_state(const char *kind, const char *name, const char *action);
int dre__status(const char *kind, const char *name);
int dre__get_pid(const char *kind, const char *name, int *pid);
/* WHAT "snapshots" or "checkpoints"; METHOD POST with SUFFIX NULL creates TAG, else METHOD .../TAG SUFFIX. */
int dre__tag(const char *kind, const char *name, const char *tag, const char *method, const char *what, const char *suffix);
int dre__tag_list(const char *kind, const char *name, const char *what, dre_list_t *list);
int dre__commit(const char *kind, const char *name, const char *tag, const char *base);
int dre__base_list(const char *kind, dre_list_t *list);
int dre__container_list(const char *kind, dre_list_t *list);
int dre__remove_base(const char *kind, const char *base);
int dre__cgroup(const char *kind, const char *name, const char *cgroup, int create);
/* WHAT "pids" (host) or "vpids" (inside an app container). */
int dre__bind(const char *kind, const char *name, const char *cgroup, int pid, int bind, const char *what);
int dre__set_resource(const char *kind, const char *name, const char *cgroup, const void *resource, struct dre__resource x);
int dre__unset_resource(const char *kind, const char *name, const char *cgroup, const void *resource, int type);
int dre__resource(const char *kind, const char *name, int pid, const void *resource, struct dre__resource *x);

#endif
