/* Chapter 1.3 through libdresys: every dre_sys_* function, driven by the "sys" steps of vectors.json. */
#include <dre_sys.h>
#include "vectors.h"

static dre_list_t list;

static int list_contains(const char *name)
{
    for (dre_list_t p = list; p != NULL && *p != NULL; p++)
        if (strcmp(*p, name) == 0) return 1;
    return 0;
}

static dre_sys_data data_of(struct run *r, struct arg *a)
{
    dre_sys_data d = { .type = (dre_sys_type_t)obj_int(a, "type") };
    d.udata.kvm.memory_size = obj_int(a, "memory_size");
    d.udata.kvm.base = (char *)obj_str(r, a, "base");
    d.udata.kvm.rootfs = (char *)obj_str(r, a, "rootfs");
    return d;
}

static dre_sys_resource_value_t resource_of(struct arg *a)
{
    dre_sys_resource_value_t v = { .type = (dre_sys_resource_t)obj_int(a, "type") };
    if (v.type == DRE_SYS_CONTAINER_RESOURCE_CPU) v.udata.cpu.parcent = obj_int(a, "value");
    else if (v.type == DRE_SYS_CONTAINER_RESOURCE_MEMORY) v.udata.mem.usage_in_bytes = obj_int(a, "value");
    else if (v.type == DRE_SYS_CONTAINER_RESOURCE_MEMSW) v.udata.mem.memsw_usage_in_bytes = obj_int(a, "value");
    return v;
}

#define H ((const dre_sys_handle *)HANDLE(0))
#define LISTOUT(i) (r->args[i].kind == A_OUT_LIST ? &list : NULL)

static int call(struct run *r, const char *fn)
{
    dre_sys_data d = data_of(r, &r->args[1]);
    int n = r->nargs;
    struct arg *last = &r->args[n > 0 ? n - 1 : 0];
    dre_sys_resource_value_t v = resource_of(last);
    dre_sys_resource_value_t *res = last->kind == A_OBJ ? &v : NULL;
    int pid = 0, got;

    if (IS("dre_sys_open")) return (r->opened = dre_sys_open(STR(0))) != NULL;
    if (IS("dre_sys_close")) return dre_sys_close(H);
    if (IS("dre_sys_create_container")) return dre_sys_create_container(STR(0), r->args[1].kind == A_OBJ ? &d : NULL);
    if (IS("dre_sys_destroy_container")) return dre_sys_destroy_container(STR(0));
    if (IS("dre_sys_start")) return dre_sys_start(H);
    if (IS("dre_sys_stop")) return dre_sys_stop(H);
    if (IS("dre_sys_suspend")) return dre_sys_suspend(H);
    if (IS("dre_sys_resume")) return dre_sys_resume(H);
    if (IS("dre_sys_status")) return dre_sys_status(H);
    if (IS("dre_sys_get_pid")) {
        got = dre_sys_get_pid(H, r->args[1].kind == A_OUT_PID ? &pid : NULL);
        if (got == 0) r->pid = pid;
        return got;
    }
    if (IS("dre_sys_get_container_list")) return dre_sys_get_container_list(LISTOUT(0));
    if (IS("dre_sys_release_container_list")) return dre_sys_release_container_list(r->args[0].kind == A_LIST ? list : NULL);
    if (IS("dre_sys_save_snapshot")) return dre_sys_save_snapshot(H, STR(1));
    if (IS("dre_sys_load_snapshot")) return dre_sys_load_snapshot(H, STR(1));
    if (IS("dre_sys_remove_snapshot")) return dre_sys_remove_snapshot(H, STR(1));
    if (IS("dre_sys_get_snapshot_list")) return dre_sys_get_snapshot_list(H, LISTOUT(1));
    if (IS("dre_sys_release_snapshot_list")) return dre_sys_release_snapshot_list(r->args[0].kind == A_LIST ? list : NULL);
    if (IS("dre_sys_commit_snapshot")) return dre_sys_commit_snapshot(H, STR(1), STR(2));
    if (IS("dre_sys_get_base_list")) return dre_sys_get_base_list(LISTOUT(0));
    if (IS("dre_sys_release_base_list")) return dre_sys_release_base_list(r->args[0].kind == A_LIST ? list : NULL);
    if (IS("dre_sys_remove_base")) return dre_sys_remove_base(STR(0));
    if (IS("dre_sys_checkpoint")) return dre_sys_checkpoint(H, STR(1));
    if (IS("dre_sys_restart")) return dre_sys_restart(H, STR(1));
    if (IS("dre_sys_remove_checkpoint")) return dre_sys_remove_checkpoint(H, STR(1));
    if (IS("dre_sys_get_checkpoint_list")) return dre_sys_get_checkpoint_list(H, LISTOUT(1));
    if (IS("dre_sys_release_checkpoint_list")) return dre_sys_release_checkpoint_list(r->args[0].kind == A_LIST ? list : NULL);
    if (IS("dre_sys_create_cgroup")) return dre_sys_create_cgroup(H, STR(1));
    if (IS("dre_sys_destroy_cgroup")) return dre_sys_destroy_cgroup(H, STR(1));
    if (IS("dre_sys_bind_pid")) return dre_sys_bind_pid(H, STR(1), INT(2));
    if (IS("dre_sys_unbind_pid")) return dre_sys_unbind_pid(H, STR(1), INT(2));
    if (IS("dre_sys_set_resource")) return dre_sys_set_resource(H, STR(1), res);
    if (IS("dre_sys_unset_resource")) return dre_sys_unset_resource(H, STR(1), res);
    if (IS("dre_sys_get_resource")) {
        got = dre_sys_get_resource(H, INT(1), res);
        if (got == 0 && v.type == DRE_SYS_CONTAINER_RESOURCE_CPU_CORE) free(v.udata.cpu.cores); /* ours to free (dre_sys.h) */
        return got;
    }
    if (IS("dre_sys_share")) return dre_sys_share(H);
    if (IS("dre_sys_unshare")) return dre_sys_unshare(H);
    if (IS("dre_sys_migration_start")) return dre_sys_migration_start(H, STR(1), INT(2));
    if (IS("dre_sys_immigration_start")) return dre_sys_immigration_start(STR(0), INT(1));
    fprintf(stderr, "sys.c: no case for %s\n", fn);
    exit(3);
}
