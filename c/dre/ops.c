/*
 * ops.c: each spec operation that both kinds have, on dred's /1.0/{kind} routes, checked in the
 * order the TypeScript spec layer checks (src/spec/app.ts, sys.ts, common.ts). app.c and sys.c
 * check the handle and call these.
 */
#define _GNU_SOURCE
#include "client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int dre__create(const char *kind, const char *name, json_object *config)
{
    int bad = dre__check_name(name);
    if (bad) {
        json_object_put(config);
        return bad;
    }
    json_object *body = dre__obj_str("name", name);
    json_object_object_add(body, "config", config);
    return dre__request("POST", body, NULL, "/1.0/%q/containers", kind);
}

int dre__destroy(const char *kind, const char *name)
{
    DRE__CHECK(dre__check_name(name));
    return dre__request("DELETE", NULL, NULL, "/1.0/%q/containers/%s", kind, name);
}

struct dre__handle *dre__open(const char *kind, int type, const char *name)
{
    if (dre__check_name(name) != 0 || dre__request("GET", NULL, NULL, "/1.0/%q/containers/%s/state", kind, name) != 0) return NULL;
    struct dre__handle *h = dre__handle_alloc(sizeof *h);
    char *copy = strdup(name);
    if (h == NULL || copy == NULL) {
        if (h != NULL) dre__handle_retire(h);
        free(copy);
        return NULL;
    }
    h->type = type;
    h->name = copy;
    return h;
}

int dre__close(const struct dre__handle *h)
{
    if (dre__handle_retire(h)) {
        struct dre__handle *mine = (struct dre__handle *)h; /* ours were allocated writable by dre__open */
        free(mine->name);
        mine->name = NULL;
        mine->type = 0; /* a later use or close: INVALID_ARGUMENT */
    }
    return 0; /* a handle the caller made is not ours to free */
}

int dre__change_state(const char *kind, const char *name, const char *action)
{
    return dre__request("PUT", dre__obj_str("action", action), NULL, "/1.0/%q/containers/%s/state", kind, name);
}

/* An int field of a reply (freed here), or MISSING. */
static int int_field(int r, json_object *reply, const char *key, int missing, int *out)
{
    json_object *v;
    if (r != 0) return r;
    if (json_object_object_get_ex(reply, key, &v) && json_object_is_type(v, json_type_int)) *out = json_object_get_int(v);
    else r = missing;
    json_object_put(reply);
    return r;
}

int dre__status(const char *kind, const char *name)
{
    json_object *reply;
    int status = 0;
    int r = dre__request("GET", NULL, &reply, "/1.0/%q/containers/%s/state", kind, name);
    r = int_field(r, reply, "status", DRE_ERR_CONTAINER_UNKNOWN_STATUS, &status);
    return r != 0 ? r : status;
}

int dre__get_pid(const char *kind, const char *name, int *pid)
{
    if (pid == NULL) return DRE_ERR_NULL_POINTER;
    json_object *reply;
    int r = dre__request("GET", NULL, &reply, "/1.0/%q/containers/%s/pid", kind, name);
    return int_field(r, reply, "pid", DRE_ERR_PID_NONEXISTENCE, pid);
}

int dre__tag(const char *kind, const char *name, const char *tag, const char *method, const char *what, const char *suffix)
{
    DRE__CHECK(dre__check_name(tag));
    if (suffix == NULL && strcmp(method, "POST") == 0)
        return dre__request("POST", dre__obj_str("tag", tag), NULL, "/1.0/%q/containers/%s/%q", kind, name, what);
    return dre__request(method, NULL, NULL, "/1.0/%q/containers/%s/%q/%s%q", kind, name, what, tag, suffix ? suffix : "");
}

int dre__tag_list(const char *kind, const char *name, const char *what, dre_list_t *list)
{
    char fmt[64];
    snprintf(fmt, sizeof fmt, "/1.0/%s/containers/%%s/%s", kind, what);
    return dre__get_names(list, what, fmt, name);
}

int dre__commit(const char *kind, const char *name, const char *tag, const char *base)
{
    DRE__CHECK(dre__check_name(tag));
    DRE__CHECK(dre__check_name(base));
    json_object *body = dre__obj_str("name", base);
    json_object_object_add(body, "container", json_object_new_string(name));
    json_object_object_add(body, "snapshot", json_object_new_string(tag));
    return dre__request("POST", body, NULL, "/1.0/%q/bases", kind);
}

int dre__base_list(const char *kind, dre_list_t *list)
{
    return strcmp(kind, "sys") == 0 ? dre__get_names(list, "bases", "/1.0/sys/bases", NULL) : dre__get_names(list, "bases", "/1.0/app/bases", NULL);
}

int dre__container_list(const char *kind, dre_list_t *list)
{
    return strcmp(kind, "sys") == 0 ? dre__get_names(list, "containers", "/1.0/sys/containers", NULL)
                                    : dre__get_names(list, "containers", "/1.0/app/containers", NULL);
}

int dre__remove_base(const char *kind, const char *base)
{
    DRE__CHECK(dre__check_name(base));
    return dre__request("DELETE", NULL, NULL, "/1.0/%q/bases/%s", kind, base);
}

int dre__cgroup(const char *kind, const char *name, const char *cgroup, int create)
{
    DRE__CHECK(dre__check_name(cgroup));
    if (create) return dre__request("POST", dre__obj_str("cgroup", cgroup), NULL, "/1.0/%q/containers/%s/cgroups", kind, name);
    return dre__request("DELETE", NULL, NULL, "/1.0/%q/containers/%s/cgroups/%s", kind, name, cgroup);
}

int dre__bind(const char *kind, const char *name, const char *cgroup, int pid, int bind, const char *what)
{
    DRE__CHECK(dre__check_pid(pid));
    DRE__CHECK(dre__check_name(cgroup));
    if (bind)
        return dre__request("POST", dre__obj_int(strcmp(what, "pids") == 0 ? "pid" : "vpid", pid), NULL, "/1.0/%q/containers/%s/cgroups/%s/%q", kind, name,
                            cgroup, what);
    return dre__request("DELETE", NULL, NULL, "/1.0/%q/containers/%s/cgroups/%s/%q/%d", kind, name, cgroup, what, pid);
}

int dre__set_resource(const char *kind, const char *name, const char *cgroup, const void *resource, struct dre__resource x)
{
    if (resource == NULL) return DRE_ERR_NULL_POINTER;
    json_object *body = dre__resource_body(&x);
    if (body == NULL) return DRE_ERR_INVALID_ARGUMENT;
    int bad = dre__check_name(cgroup);
    if (bad) {
        json_object_put(body);
        return bad;
    }
    return dre__request("PUT", body, NULL, "/1.0/%q/containers/%s/cgroups/%s/limits", kind, name, cgroup);
}

int dre__unset_resource(const char *kind, const char *name, const char *cgroup, const void *resource, int type)
{
    if (resource == NULL) return DRE_ERR_NULL_POINTER;
    if (type < 1 || type > 4) return DRE_ERR_INVALID_ARGUMENT;
    DRE__CHECK(dre__check_name(cgroup));
    return dre__request("DELETE", NULL, NULL, "/1.0/%q/containers/%s/cgroups/%s/limits/%d", kind, name, cgroup, type);
}

int dre__resource(const char *kind, const char *name, int pid, const void *resource, struct dre__resource *x)
{
    if (resource == NULL) return DRE_ERR_NULL_POINTER;
    DRE__CHECK(dre__check_pid(pid));
    if (x->type < 1 || x->type > 4) return DRE_ERR_INVALID_ARGUMENT;
    return dre__get_resource(kind, name, pid, x);
}
