/*
 * No daemon: every function of both libraries, with valid arguments, returns DRE_ERR_NO_SOCKET_AVAILABLE
 * (the open functions NULL). Linked with both libraries at once. Prints the number of calls that
 * did not, then how many calls were made.
 */
#include <dre_app.h>
#include <dre_sys.h>
#include <stdio.h>

static int wrong, calls;
#define EXPECT(call)                                                                     \
    do {                                                                                 \
        int r_ = (call);                                                                 \
        calls++;                                                                         \
        if (r_ != DRE_ERR_NO_SOCKET_AVAILABLE) fprintf(stderr, "%s: %d\n", #call, r_), wrong++; \
    } while (0)

int main(void)
{
    dre_app_handle a = { DRE_APP_CONTAINER_TYPE_LXC, "web" };
    dre_sys_handle s = { DRE_SYS_CONTAINER_TYPE_KVM, "vm" };
    dre_app_data ad = { .type = DRE_APP_CONTAINER_TYPE_LXC };
    dre_sys_data sd = { .type = DRE_SYS_CONTAINER_TYPE_KVM };
    dre_app_resource_value_t ar = { .type = DRE_APP_CONTAINER_RESOURCE_MEMORY };
    dre_sys_resource_value_t sr = { .type = DRE_SYS_CONTAINER_RESOURCE_MEMORY };
    dre_list_t l;
    dre_app_pid_list_t pl;
    int pid;

    if (dre_app_open("web") != NULL) wrong++;
    if (dre_sys_open("vm") != NULL) wrong++;
    calls += 2;
    EXPECT(dre_app_bind_pid(&a, "g", 1));
    EXPECT(dre_app_bind_vpid(&a, "g", 1));
    EXPECT(dre_app_checkpoint(&a, "t"));
    EXPECT(dre_app_commit_snapshot(&a, "t", "b"));
    EXPECT(dre_app_create_cgroup(&a, "g"));
    EXPECT(dre_app_create_container("web", &ad));
    EXPECT(dre_app_destroy_cgroup(&a, "g"));
    EXPECT(dre_app_destroy_container("web"));
    EXPECT(dre_app_get_base_list(&l));
    EXPECT(dre_app_get_checkpoint_list(&a, &l));
    EXPECT(dre_app_get_container_list(&l));
    EXPECT(dre_app_get_pid(&a, &pid));
    EXPECT(dre_app_get_registered_pid_list(&a, &pl));
    EXPECT(dre_app_get_resource(&a, 1, &ar));
    EXPECT(dre_app_get_snapshot_list(&a, &l));
    EXPECT(dre_app_load_snapshot(&a, "t"));
    EXPECT(dre_app_register_pid(&a, 1));
    EXPECT(dre_app_register_vpid(&a, 1));
    EXPECT(dre_app_remove_base("b"));
    EXPECT(dre_app_remove_checkpoint(&a, "t"));
    EXPECT(dre_app_remove_snapshot(&a, "t"));
    EXPECT(dre_app_restart(&a, "t"));
    EXPECT(dre_app_resume(&a));
    EXPECT(dre_app_save_snapshot(&a, "t"));
    EXPECT(dre_app_set_resource(&a, "g", &ar));
    EXPECT(dre_app_start(&a));
    EXPECT(dre_app_status(&a));
    EXPECT(dre_app_stop(&a));
    EXPECT(dre_app_suspend(&a));
    EXPECT(dre_app_unbind_pid(&a, "g", 1));
    EXPECT(dre_app_unbind_vpid(&a, "g", 1));
    EXPECT(dre_app_unregister_pid(&a, 1));
    EXPECT(dre_app_unregister_vpid(&a, 1));
    EXPECT(dre_app_unset_resource(&a, "g", &ar));

    EXPECT(dre_sys_bind_pid(&s, "g", 1));
    EXPECT(dre_sys_checkpoint(&s, "t"));
    EXPECT(dre_sys_commit_snapshot(&s, "t", "b"));
    EXPECT(dre_sys_create_cgroup(&s, "g"));
    EXPECT(dre_sys_create_container("vm", &sd));
    EXPECT(dre_sys_destroy_cgroup(&s, "g"));
    EXPECT(dre_sys_destroy_container("vm"));
    EXPECT(dre_sys_get_base_list(&l));
    EXPECT(dre_sys_get_checkpoint_list(&s, &l));
    EXPECT(dre_sys_get_container_list(&l));
    EXPECT(dre_sys_get_pid(&s, &pid));
    EXPECT(dre_sys_get_resource(&s, 1, &sr));
    EXPECT(dre_sys_get_snapshot_list(&s, &l));
    EXPECT(dre_sys_immigration_start("vm", 4444));
    EXPECT(dre_sys_load_snapshot(&s, "t"));
    EXPECT(dre_sys_migration_start(&s, "127.0.0.1", 4444));
    EXPECT(dre_sys_remove_base("b"));
    EXPECT(dre_sys_remove_checkpoint(&s, "t"));
    EXPECT(dre_sys_remove_snapshot(&s, "t"));
    EXPECT(dre_sys_restart(&s, "t"));
    EXPECT(dre_sys_resume(&s));
    EXPECT(dre_sys_save_snapshot(&s, "t"));
    EXPECT(dre_sys_set_resource(&s, "g", &sr));
    EXPECT(dre_sys_share(&s));
    EXPECT(dre_sys_start(&s));
    EXPECT(dre_sys_status(&s));
    EXPECT(dre_sys_stop(&s));
    EXPECT(dre_sys_suspend(&s));
    EXPECT(dre_sys_unbind_pid(&s, "g", 1));
    EXPECT(dre_sys_unset_resource(&s, "g", &sr));
    EXPECT(dre_sys_unshare(&s));
    printf("%d %d\n", wrong, calls);
    return wrong != 0;
}
