/* libdresys: the spec's section 1.3, each function a checked call of ops.c on dred's /1.0/sys routes. */
#include "dre_sys.h"
#include "client.h"

#include <stddef.h>

#define API __attribute__((visibility("default")))
#define KIND "sys"
#define TYPE DRE_SYS_CONTAINER_TYPE_KVM
#define HANDLE(h, n) DRE__HANDLE(h, TYPE, n)
#define RES_IN(r) ((r) != NULL ? DRE__RESOURCE_IN(r) : (struct dre__resource){ 0, 0, NULL })

_Static_assert(sizeof(dre_sys_handle) == sizeof(struct dre__handle) && offsetof(dre_sys_handle, name) == offsetof(struct dre__handle, name),
               "dre_sys_handle is laid out as struct dre__handle");

API dre_return_t dre_sys_create_container(const char *name, const dre_sys_data *data)
{
    if (data == NULL) return DRE_ERR_NULL_POINTER;
    if (data->type != TYPE) return DRE_ERR_INVALID_ARGUMENT;
    if (data->udata.kvm.base != NULL) DRE__CHECK(dre__check_name(data->udata.kvm.base));
    json_object *config = json_object_new_object();
    json_object_object_add(config, "memorySize", data->udata.kvm.memory_size != 0 ? json_object_new_int(data->udata.kvm.memory_size) : NULL);
    json_object_object_add(config, "base", data->udata.kvm.base ? json_object_new_string(data->udata.kvm.base) : NULL);
    json_object_object_add(config, "rootfs", data->udata.kvm.rootfs ? json_object_new_string(data->udata.kvm.rootfs) : NULL);
    return dre__create(KIND, name, config);
}
API dre_return_t dre_sys_destroy_container(const char *name) { return dre__destroy(KIND, name); }
API dre_sys_handle *dre_sys_open(const char *name) { return (dre_sys_handle *)dre__open(KIND, TYPE, name); }
API dre_return_t dre_sys_close(const dre_sys_handle *h) { HANDLE(h, n); return dre__close((const struct dre__handle *)h); }

API dre_return_t dre_sys_start(const dre_sys_handle *h) { HANDLE(h, n); return dre__change_state(KIND, n, "start"); }
API dre_return_t dre_sys_stop(const dre_sys_handle *h) { HANDLE(h, n); return dre__change_state(KIND, n, "stop"); }
API dre_return_t dre_sys_suspend(const dre_sys_handle *h) { HANDLE(h, n); return dre__change_state(KIND, n, "suspend"); }
API dre_return_t dre_sys_resume(const dre_sys_handle *h) { HANDLE(h, n); return dre__change_state(KIND, n, "resume"); }
API dre_return_t dre_sys_status(const dre_sys_handle *h) { HANDLE(h, n); return dre__status(KIND, n); }
API dre_return_t dre_sys_get_pid(const dre_sys_handle *h, int *pid) { HANDLE(h, n); return dre__get_pid(KIND, n, pid); }
API dre_return_t dre_sys_get_container_list(dre_list_t *list) { return dre__container_list(KIND, list); }
API dre_return_t dre_sys_release_container_list(dre_list_t list) { return dre__release_names(list); }

API dre_return_t dre_sys_save_snapshot(const dre_sys_handle *h, const char *tag) { HANDLE(h, n); return dre__tag(KIND, n, tag, "POST", "snapshots", NULL); }
API dre_return_t dre_sys_load_snapshot(const dre_sys_handle *h, const char *tag) { HANDLE(h, n); return dre__tag(KIND, n, tag, "POST", "snapshots", "/load"); }
API dre_return_t dre_sys_remove_snapshot(const dre_sys_handle *h, const char *tag) { HANDLE(h, n); return dre__tag(KIND, n, tag, "DELETE", "snapshots", NULL); }
API dre_return_t dre_sys_get_snapshot_list(const dre_sys_handle *h, dre_list_t *list) { HANDLE(h, n); return dre__tag_list(KIND, n, "snapshots", list); }
API dre_return_t dre_sys_release_snapshot_list(dre_list_t list) { return dre__release_names(list); }
API dre_return_t dre_sys_commit_snapshot(const dre_sys_handle *h, const char *tag, const char *base) { HANDLE(h, n); return dre__commit(KIND, n, tag, base); }
API dre_return_t dre_sys_get_base_list(dre_list_t *list) { return dre__base_list(KIND, list); }
API dre_return_t dre_sys_release_base_list(dre_list_t list) { return dre__release_names(list); }
API dre_return_t dre_sys_remove_base(const char *base) { return dre__remove_base(KIND, base); }

API dre_return_t dre_sys_checkpoint(const dre_sys_handle *h, const char *tag) { HANDLE(h, n); return dre__tag(KIND, n, tag, "POST", "checkpoints", NULL); }
API dre_return_t dre_sys_restart(const dre_sys_handle *h, const char *tag) { HANDLE(h, n); return dre__tag(KIND, n, tag, "POST", "checkpoints", "/restart"); }
API dre_return_t dre_sys_remove_checkpoint(const dre_sys_handle *h, const char *tag) { HANDLE(h, n); return dre__tag(KIND, n, tag, "DELETE", "checkpoints", NULL); }
API dre_return_t dre_sys_get_checkpoint_list(const dre_sys_handle *h, dre_list_t *list) { HANDLE(h, n); return dre__tag_list(KIND, n, "checkpoints", list); }
API dre_return_t dre_sys_release_checkpoint_list(dre_list_t list) { return dre__release_names(list); }

API dre_return_t dre_sys_create_cgroup(const dre_sys_handle *h, const char *cgroup) { HANDLE(h, n); return dre__cgroup(KIND, n, cgroup, 1); }
API dre_return_t dre_sys_destroy_cgroup(const dre_sys_handle *h, const char *cgroup) { HANDLE(h, n); return dre__cgroup(KIND, n, cgroup, 0); }
API dre_return_t dre_sys_bind_pid(const dre_sys_handle *h, const char *cgroup, const int pid) { HANDLE(h, n); return dre__bind(KIND, n, cgroup, pid, 1, "pids"); }
API dre_return_t dre_sys_unbind_pid(const dre_sys_handle *h, const char *cgroup, const int pid) { HANDLE(h, n); return dre__bind(KIND, n, cgroup, pid, 0, "pids"); }
API dre_return_t dre_sys_set_resource(const dre_sys_handle *h, const char *cgroup, dre_sys_resource_value_t *resource)
{
    HANDLE(h, n);
    return dre__set_resource(KIND, n, cgroup, resource, RES_IN(resource));
}
API dre_return_t dre_sys_unset_resource(const dre_sys_handle *h, const char *cgroup, dre_sys_resource_value_t *resource)
{
    HANDLE(h, n);
    return dre__unset_resource(KIND, n, cgroup, resource, resource != NULL ? (int)resource->type : 0);
}
API dre_return_t dre_sys_get_resource(const dre_sys_handle *h, const int pid, dre_sys_resource_value_t *resource)
{
    HANDLE(h, n);
    struct dre__resource x = { resource != NULL ? (int)resource->type : 0, 0, NULL };
    DRE__CHECK(dre__resource(KIND, n, pid, resource, &x));
    DRE__RESOURCE_OUT(resource, x);
    return 0;
}

/* Sharing and migration (system containers only). */
API dre_return_t dre_sys_share(const dre_sys_handle *h) { HANDLE(h, n); return dre__request("POST", NULL, NULL, "/1.0/sys/containers/%s/share", n); }
API dre_return_t dre_sys_unshare(const dre_sys_handle *h) { HANDLE(h, n); return dre__request("DELETE", NULL, NULL, "/1.0/sys/containers/%s/share", n); }
API dre_return_t dre_sys_migration_start(const dre_sys_handle *h, const char *target, const int port)
{
    HANDLE(h, n);
    if (target == NULL) return DRE_ERR_NULL_POINTER;
    json_object *body = dre__obj_str("target", target);
    json_object_object_add(body, "port", json_object_new_int(port));
    return dre__request("POST", body, NULL, "/1.0/sys/containers/%s/migrate", n);
}
API dre_return_t dre_sys_immigration_start(const char *name, const int port)
{
    DRE__CHECK(dre__check_name(name));
    json_object *body = dre__obj_str("name", name);
    json_object_object_add(body, "port", json_object_new_int(port));
    return dre__request("POST", body, NULL, "/1.0/sys/immigrations");
}
