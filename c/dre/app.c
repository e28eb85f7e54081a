/* libdreapp: the spec's section 1.2, each function a checked call of ops.c on dred's /1.0/app routes. */
#include "dre_app.h"
#include "client.h"

#include <stddef.h>
#include <stdlib.h>

#define API __attribute__((visibility("default")))
#define KIND "app"
#define TYPE DRE_APP_CONTAINER_TYPE_LXC
#define HANDLE(h, n) DRE__HANDLE(h, TYPE, n)
#define RES_IN(r) ((r) != NULL ? DRE__RESOURCE_IN(r) : (struct dre__resource){ 0, 0, NULL })

_Static_assert(sizeof(dre_app_handle) == sizeof(struct dre__handle) && offsetof(dre_app_handle, name) == offsetof(struct dre__handle, name),
               "dre_app_handle is laid out as struct dre__handle");

API dre_return_t dre_app_create_container(const char *name, const dre_app_data *data)
{
    if (data == NULL) return DRE_ERR_NULL_POINTER;
    if (data->type != TYPE) return DRE_ERR_INVALID_ARGUMENT;
    if (data->udata.lxc.base != NULL) DRE__CHECK(dre__check_name(data->udata.lxc.base));
    json_object *config = json_object_new_object();
    json_object_object_add(config, "base", data->udata.lxc.base ? json_object_new_string(data->udata.lxc.base) : NULL);
    json_object_object_add(config, "port", data->udata.lxc.port != 0 ? json_object_new_int(data->udata.lxc.port) : NULL);
    return dre__create(KIND, name, config);
}
API dre_return_t dre_app_destroy_container(const char *name) { return dre__destroy(KIND, name); }
API dre_app_handle *dre_app_open(const char *name) { return (dre_app_handle *)dre__open(KIND, TYPE, name); }
API dre_return_t dre_app_close(const dre_app_handle *h) { HANDLE(h, n); return dre__close((const struct dre__handle *)h); }

API dre_return_t dre_app_start(const dre_app_handle *h) { HANDLE(h, n); return dre__change_state(KIND, n, "start"); }
API dre_return_t dre_app_stop(const dre_app_handle *h) { HANDLE(h, n); return dre__change_state(KIND, n, "stop"); }
API dre_return_t dre_app_suspend(const dre_app_handle *h) { HANDLE(h, n); return dre__change_state(KIND, n, "suspend"); }
API dre_return_t dre_app_resume(const dre_app_handle *h) { HANDLE(h, n); return dre__change_state(KIND, n, "resume"); }
API dre_return_t dre_app_status(const dre_app_handle *h) { HANDLE(h, n); return dre__status(KIND, n); }
API dre_return_t dre_app_get_pid(const dre_app_handle *h, int *pid) { HANDLE(h, n); return dre__get_pid(KIND, n, pid); }
API dre_return_t dre_app_get_container_list(dre_list_t *list) { return dre__container_list(KIND, list); }
API dre_return_t dre_app_release_container_list(dre_list_t list) { return dre__release_names(list); }

API dre_return_t dre_app_save_snapshot(const dre_app_handle *h, const char *tag) { HANDLE(h, n); return dre__tag(KIND, n, tag, "POST", "snapshots", NULL); }
API dre_return_t dre_app_load_snapshot(const dre_app_handle *h, const char *tag) { HANDLE(h, n); return dre__tag(KIND, n, tag, "POST", "snapshots", "/load"); }
API dre_return_t dre_app_remove_snapshot(const dre_app_handle *h, const char *tag) { HANDLE(h, n); return dre__tag(KIND, n, tag, "DELETE", "snapshots", NULL); }
API dre_return_t dre_app_get_snapshot_list(const dre_app_handle *h, dre_list_t *list) { HANDLE(h, n); return dre__tag_list(KIND, n, "snapshots", list); }
API dre_return_t dre_app_release_snapshot_list(dre_list_t list) { return dre__release_names(list); }
API dre_return_t dre_app_commit_snapshot(const dre_app_handle *h, const char *tag, const char *base) { HANDLE(h, n); return dre__commit(KIND, n, tag, base); }
API dre_return_t dre_app_get_base_list(dre_list_t *list) { return dre__base_list(KIND, list); }
API dre_return_t dre_app_release_base_list(dre_list_t list) { return dre__release_names(list); }
API dre_return_t dre_app_remove_base(const char *base) { return dre__remove_base(KIND, base); }

API dre_return_t dre_app_checkpoint(const dre_app_handle *h, const char *tag) { HANDLE(h, n); return dre__tag(KIND, n, tag, "POST", "checkpoints", NULL); }
API dre_return_t dre_app_restart(const dre_app_handle *h, const char *tag) { HANDLE(h, n); return dre__tag(KIND, n, tag, "POST", "checkpoints", "/restart"); }
API dre_return_t dre_app_remove_checkpoint(const dre_app_handle *h, const char *tag) { HANDLE(h, n); return dre__tag(KIND, n, tag, "DELETE", "checkpoints", NULL); }
API dre_return_t dre_app_get_checkpoint_list(const dre_app_handle *h, dre_list_t *list) { HANDLE(h, n); return dre__tag_list(KIND, n, "checkpoints", list); }
API dre_return_t dre_app_release_checkpoint_list(dre_list_t list) { return dre__release_names(list); }

API dre_return_t dre_app_create_cgroup(const dre_app_handle *h, const char *cgroup) { HANDLE(h, n); return dre__cgroup(KIND, n, cgroup, 1); }
API dre_return_t dre_app_destroy_cgroup(const dre_app_handle *h, const char *cgroup) { HANDLE(h, n); return dre__cgroup(KIND, n, cgroup, 0); }
API dre_return_t dre_app_bind_pid(const dre_app_handle *h, const char *cgroup, const int pid) { HANDLE(h, n); return dre__bind(KIND, n, cgroup, pid, 1, "pids"); }
API dre_return_t dre_app_bind_vpid(const dre_app_handle *h, const char *cgroup, const int vpid) { HANDLE(h, n); return dre__bind(KIND, n, cgroup, vpid, 1, "vpids"); }
API dre_return_t dre_app_unbind_pid(const dre_app_handle *h, const char *cgroup, const int pid) { HANDLE(h, n); return dre__bind(KIND, n, cgroup, pid, 0, "pids"); }
API dre_return_t dre_app_unbind_vpid(const dre_app_handle *h, const char *cgroup, const int vpid) { HANDLE(h, n); return dre__bind(KIND, n, cgroup, vpid, 0, "vpids"); }
API dre_return_t dre_app_set_resource(const dre_app_handle *h, const char *cgroup, dre_app_resource_value_t *resource)
{
    HANDLE(h, n);
    return dre__set_resource(KIND, n, cgroup, resource, RES_IN(resource));
}
API dre_return_t dre_app_unset_resource(const dre_app_handle *h, const char *cgroup, dre_app_resource_value_t *resource)
{
    HANDLE(h, n);
    return dre__unset_resource(KIND, n, cgroup, resource, resource != NULL ? (int)resource->type : 0);
}
API dre_return_t dre_app_get_resource(const dre_app_handle *h, const int pid, dre_app_resource_value_t *resource)
{
    HANDLE(h, n);
    struct dre__resource x = { resource != NULL ? (int)resource->type : 0, 0, NULL };
    DRE__CHECK(dre__resource(KIND, n, pid, resource, &x));
    DRE__RESOURCE_OUT(resource, x);
    return 0;
}

/* The D-Aware registry (app containers only). */
static dre_return_t register_call(const char *name, const char *key, int pid)
{
    DRE__CHECK(dre__check_pid(pid));
    return dre__request("POST", dre__obj_int(key, pid), NULL, "/1.0/app/containers/%s/registered-pids", name);
}
static dre_return_t unregister_call(const char *name, const char *what, int pid)
{
    DRE__CHECK(dre__check_pid(pid));
    return dre__request("DELETE", NULL, NULL, "/1.0/app/containers/%s/%q/%d", name, what, pid);
}
API dre_return_t dre_app_register_pid(const dre_app_handle *h, const int pid) { HANDLE(h, n); return register_call(n, "pid", pid); }
API dre_return_t dre_app_register_vpid(const dre_app_handle *h, const int vpid) { HANDLE(h, n); return register_call(n, "vpid", vpid); }
API dre_return_t dre_app_unregister_pid(const dre_app_handle *h, const int pid) { HANDLE(h, n); return unregister_call(n, "registered-pids", pid); }
API dre_return_t dre_app_unregister_vpid(const dre_app_handle *h, const int vpid) { HANDLE(h, n); return unregister_call(n, "registered-vpids", vpid); }

API dre_return_t dre_app_get_registered_pid_list(const dre_app_handle *h, dre_pid_list_t *list)
{
    HANDLE(h, n);
    if (list == NULL) return DRE_ERR_NULL_POINTER;
    *list = NULL;
    json_object *reply, *arr, *v;
    DRE__CHECK(dre__request("GET", NULL, &reply, "/1.0/app/containers/%s/registered-pids", n));
    int r = DRE_ERR_NO_SOCKET_AVAILABLE;
    if (json_object_object_get_ex(reply, "pids", &arr) && json_object_is_type(arr, json_type_array)) {
        size_t count = json_object_array_length(arr);
        dre_app_pid_list_t l = calloc(count + 1, sizeof *l);
        for (size_t i = 0; l != NULL && i < count && (l[i] = calloc(1, sizeof **l)) != NULL; i++) {
            json_object *e = json_object_array_get_idx(arr, i);
            if (json_object_object_get_ex(e, "pid", &v)) l[i]->pid = json_object_get_int(v);
            if (json_object_object_get_ex(e, "vpid", &v)) l[i]->vpid = json_object_get_int(v);
        }
        if (l != NULL) {
            dre__track(l);
            *list = l;
            r = 0;
        }
    }
    json_object_put(reply);
    return r;
}

API dre_return_t dre_app_release_registered_pid_list(dre_app_pid_list_t list)
{
    if (list == NULL) return DRE_ERR_NULL_POINTER;
    if (!dre__untrack(list)) return DRE_ERR_INVALID_ARGUMENT; /* released already, or not from this library */
    for (dre_app_pid_list_t p = list; *p != NULL; p++) free(*p);
    free(list);
    return 0;
}
