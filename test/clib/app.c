/* Chapter 1.2 through libdreapp: every dre_app_* function, driven by the "app" steps of vectors.json. */
#include <dre_app.h>
#include "vectors.h"

static dre_list_t list;
static dre_app_pid_list_t pids;

static int list_contains(const char *name)
{
    for (dre_list_t p = list; p != NULL && *p != NULL; p++)
        if (strcmp(*p, name) == 0) return 1;
    return 0;
}

static dre_app_data data_of(struct run *r, struct arg *a)
{
    dre_app_data d = { .type = (dre_app_type_t)obj_int(a, "type") };
    d.udata.lxc.port = obj_int(a, "port");
    d.udata.lxc.base = (char *)obj_str(r, a, "base");
    return d;
}

static dre_app_resource_value_t resource_of(struct arg *a)
{
    dre_app_resource_value_t v = { .type = (dre_app_resource_t)obj_int(a, "type") };
    if (v.type == DRE_APP_CONTAINER_RESOURCE_CPU) v.udata.cpu.parcent = obj_int(a, "value");
    else if (v.type == DRE_APP_CONTAINER_RESOURCE_MEMORY) v.udata.mem.usage_in_bytes = obj_int(a, "value");
    else if (v.type == DRE_APP_CONTAINER_RESOURCE_MEMSW) v.udata.mem.memsw_usage_in_bytes = obj_int(a, "value");
    return v;
}

#define H ((const dre_app_handle *)HANDLE(0))
#define LISTOUT(i) (r->args[i].kind == A_OUT_LIST ? &list : NULL)

static int call(struct run *r, const char *fn)
{
    dre_app_data d = data_of(r, &r->args[1]);
    int n = r->nargs;
    struct arg *last = &r->args[n > 0 ? n - 1 : 0];
    dre_app_resource_value_t v = resource_of(last);
    dre_app_resource_value_t *res = last->kind == A_OBJ ? &v : NULL;
    int pid = 0, got;

    if (IS("dre_app_open")) return (r->opened = dre_app_open(STR(0))) != NULL;
    if (IS("dre_app_close")) return dre_app_close(H);
    if (IS("dre_app_create_container")) return dre_app_create_container(STR(0), r->args[1].kind == A_OBJ ? &d : NULL);
    if (IS("dre_app_destroy_container")) return dre_app_destroy_container(STR(0));
    if (IS("dre_app_start")) return dre_app_start(H);
    if (IS("dre_app_stop")) return dre_app_stop(H);
    if (IS("dre_app_suspend")) return dre_app_suspend(H);
    if (IS("dre_app_resume")) return dre_app_resume(H);
    if (IS("dre_app_status")) return dre_app_status(H);
    if (IS("dre_app_get_pid")) {
        got = dre_app_get_pid(H, r->args[1].kind == A_OUT_PID ? &pid : NULL);
        if (got == 0) r->pid = pid;
        return got;
    }
    if (IS("dre_app_get_container_list")) return dre_app_get_container_list(LISTOUT(0));
    if (IS("dre_app_release_container_list")) return dre_app_release_container_list(r->args[0].kind == A_LIST ? list : NULL);
    if (IS("dre_app_save_snapshot")) return dre_app_save_snapshot(H, STR(1));
    if (IS("dre_app_load_snapshot")) return dre_app_load_snapshot(H, STR(1));
    if (IS("dre_app_remove_snapshot")) return dre_app_remove_snapshot(H, STR(1));
    if (IS("dre_app_get_snapshot_list")) return dre_app_get_snapshot_list(H, LISTOUT(1));
    if (IS("dre_app_release_snapshot_list")) return dre_app_release_snapshot_list(r->args[0].kind == A_LIST ? list : NULL);
    if (IS("dre_app_commit_snapshot")) return dre_app_commit_snapshot(H, STR(1), STR(2));
    if (IS("dre_app_get_base_list")) return dre_app_get_base_list(LISTOUT(0));
    if (IS("dre_app_release_base_list")) return dre_app_release_base_list(r->args[0].kind == A_LIST ? list : NULL);
    if (IS("dre_app_remove_base")) return dre_app_remove_base(STR(0));
    if (IS("dre_app_checkpoint")) return dre_app_checkpoint(H, STR(1));
    if (IS("dre_app_restart")) return dre_app_restart(H, STR(1));
    if (IS("dre_app_remove_checkpoint")) return dre_app_remove_checkpoint(H, STR(1));
    if (IS("dre_app_get_checkpoint_list")) return dre_app_get_checkpoint_list(H, LISTOUT(1));
    if (IS("dre_app_release_checkpoint_list")) return dre_app_release_checkpoint_list(r->args[0].kind == A_LIST ? list : NULL);
    if (IS("dre_app_create_cgroup")) return dre_app_create_cgroup(H, STR(1));
    if (IS("dre_app_destroy_cgroup")) return dre_app_destroy_cgroup(H, STR(1));
    if (IS("dre_app_bind_pid")) return dre_app_bind_pid(H, STR(1), INT(2));
    if (IS("dre_app_bind_vpid")) return dre_app_bind_vpid(H, STR(1), INT(2));
    if (IS("dre_app_unbind_pid")) return dre_app_unbind_pid(H, STR(1), INT(2));
    if (IS("dre_app_unbind_vpid")) return dre_app_unbind_vpid(H, STR(1), INT(2));
    if (IS("dre_app_set_resource")) return dre_app_set_resource(H, STR(1), res);
    if (IS("dre_app_unset_resource")) return dre_app_unset_resource(H, STR(1), res);
    if (IS("dre_app_get_resource")) {
        got = dre_app_get_resource(H, INT(1), res);
        if (got == 0 && v.type == DRE_APP_CONTAINER_RESOURCE_CPU_CORE) free(v.udata.cpu.cores); /* ours to free (dre_app.h) */
        return got;
    }
    if (IS("dre_app_register_pid")) return dre_app_register_pid(H, INT(1));
    if (IS("dre_app_register_vpid")) return dre_app_register_vpid(H, INT(1));
    if (IS("dre_app_unregister_pid")) return dre_app_unregister_pid(H, INT(1));
    if (IS("dre_app_unregister_vpid")) return dre_app_unregister_vpid(H, INT(1));
    if (IS("dre_app_get_registered_pid_list")) return dre_app_get_registered_pid_list(H, r->args[1].kind == A_OUT_LIST ? &pids : NULL);
    if (IS("dre_app_release_registered_pid_list")) return dre_app_release_registered_pid_list(r->args[0].kind == A_LIST ? pids : NULL);
    fprintf(stderr, "app.c: no case for %s\n", fn);
    exit(3);
}
