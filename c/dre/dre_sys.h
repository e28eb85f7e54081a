/*
 * dre_sys.h: the D-RE API for System Containers (QEMU), spec D-RE APIs E1.02, section 1.3.
 * Link with libdresys: cc prog.c $(pkg-config --cflags --libs dresys)
 *
 * Every function is synchronous and asks the D-RE daemon `dred` over HTTP/1.1 on the unix socket
 * $DRE_RUNDIR/dred.sock (DRE_RUNDIR defaults to /run/dre; the daemon must run as root).
 *
 * No daemon: when nothing answers on that socket (no socket file, connection refused, no answer in
 * time) every function returns DRE_ERR_NO_SOCKET_AVAILABLE (-153) and dre_sys_open returns NULL. A
 * call never hangs: connecting gives up after 2 s, a request after 10 minutes, and long work
 * (create, commit, checkpoint, restart, migration, immigration) is followed on the daemon in 30 s waits for at most one hour.
 *
 * Arguments are checked before anything is sent: NULL -> DRE_ERR_NULL_POINTER; a name (container,
 * snapshot, checkpoint, Base Image, Control Group) over 64 characters -> DRE_ERR_REQUEST_TOO_LONG;
 * another malformed name (use A-Z a-z 0-9 _ . -, not starting with . or -) -> DRE_ERR_INVALID_ARGUMENT.
 *
 * Memory: handles come from dre_sys_open and go back with dre_sys_close; a closed handle is
 * refused with DRE_ERR_INVALID_ARGUMENT (its memory is kept for the next dre_sys_open, so the stale
 * pointer is caught until then). Lists come from the get_*_list functions and go back with the
 * matching release function; releasing NULL -> DRE_ERR_NULL_POINTER, a list that was already
 * released (or is not the library's) -> DRE_ERR_INVALID_ARGUMENT. dre_sys_get_resource of
 * DRE_SYS_CONTAINER_RESOURCE_CPU_CORE sets udata.cpu.cores to a string the caller frees with free().
 * All functions may be called from several threads.
 */
#ifndef DRE_SYS_H
#define DRE_SYS_H

#include "dre_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1.3.2.1 The type of the resource. */
typedef enum {
    DRE_SYS_CONTAINER_RESOURCE_CPU = 1,        /* CPU */
    DRE_SYS_CONTAINER_RESOURCE_CPU_CORE,       /* CPU core(s) */
    DRE_SYS_CONTAINER_RESOURCE_MEMORY,         /* Memory */
    DRE_SYS_CONTAINER_RESOURCE_MEMSW           /* Memory and swap */
} dre_sys_resource_t;

/* 1.3.2.2 The status of the container. */
typedef enum {
    DRE_SYS_CONTAINER_STATUS_STOP = 11,        /* The container is stopped. */
    DRE_SYS_CONTAINER_STATUS_RUNNING,          /* The container is running. */
    DRE_SYS_CONTAINER_STATUS_SUSPENDED,        /* The container is suspended. */
    DRE_SYS_CONTAINER_STATUS_BUSY              /* The container is busy. */
} dre_sys_status_t;

/* 1.3.2.3 The type of the container. */
typedef enum {
    DRE_SYS_CONTAINER_TYPE_KVM = 100           /* KVM */
} dre_sys_type_t;

/*
 * 1.3.3.1 The configuration of the container. The spec prints `kvm` as a union; all three are used
 * together, so `kvm` is a struct here (same field names). memory_size in MiB, 0 = the default;
 * base NULL = the default Base Image; rootfs NULL = none.
 */
typedef struct {
    dre_sys_type_t type;        /* The type of the container */
    union {
        struct {
            int memory_size;    /* The amount of the memory allocated by the container */
            char *base;         /* The name of the Base Image (NULL for default) */
            char *rootfs;       /* The name of the partition to be mounted instead of the base image */
        } kvm;
    } udata;
} dre_sys_data;

/* 1.3.3.2 Handle of the container. */
typedef struct {
    dre_sys_type_t type;        /* The type of the container */
    char *name;                 /* The name of the container */
} dre_sys_handle;

/* 1.3.3.3 Resource usage. CPU percent is a whole number; bytes beyond INT_MAX read as INT_MAX. */
typedef struct {
    dre_sys_resource_t type;    /* The type of the resource */
    union {
        union {
            int parcent;        /* CPU usage (%) */
            char *cores;        /* CPU core(s) */
        } cpu;
        union {
            int usage_in_bytes;       /* Memory usage (Bytes) */
            int memsw_usage_in_bytes; /* Memory and swap usage (Bytes) */
        } mem;
    } udata;
} dre_sys_resource_value_t;

/* 1.3.5 Functions. dre_sys_status returns a dre_sys_status_t (11-14) or a dre_err_t; the others 0 or a dre_err_t. */
dre_return_t dre_sys_bind_pid(const dre_sys_handle *h, const char *cgroup, const int pid);
dre_return_t dre_sys_checkpoint(const dre_sys_handle *h, const char *tag);
dre_return_t dre_sys_close(const dre_sys_handle *h);
dre_return_t dre_sys_commit_snapshot(const dre_sys_handle *h, const char *tag, const char *base);
dre_return_t dre_sys_create_cgroup(const dre_sys_handle *h, const char *cgroup);
dre_return_t dre_sys_create_container(const char *name, const dre_sys_data *data);
dre_return_t dre_sys_destroy_cgroup(const dre_sys_handle *h, const char *cgroup);
dre_return_t dre_sys_destroy_container(const char *name);
dre_return_t dre_sys_get_base_list(dre_list_t *list);
dre_return_t dre_sys_get_checkpoint_list(const dre_sys_handle *h, dre_list_t *list);
dre_return_t dre_sys_get_container_list(dre_list_t *list);
dre_return_t dre_sys_get_pid(const dre_sys_handle *h, int *pid);
dre_return_t dre_sys_get_resource(const dre_sys_handle *h, const int pid, dre_sys_resource_value_t *resource);
dre_return_t dre_sys_get_snapshot_list(const dre_sys_handle *h, dre_list_t *list);
dre_return_t dre_sys_immigration_start(const char *name, const int port);
dre_return_t dre_sys_load_snapshot(const dre_sys_handle *h, const char *tag);
dre_return_t dre_sys_migration_start(const dre_sys_handle *h, const char *target, const int port);
dre_sys_handle *dre_sys_open(const char *name);
dre_return_t dre_sys_release_base_list(dre_list_t list);
dre_return_t dre_sys_release_checkpoint_list(dre_list_t list);
dre_return_t dre_sys_release_container_list(dre_list_t list);
dre_return_t dre_sys_release_snapshot_list(dre_list_t list);
dre_return_t dre_sys_remove_base(const char *base);
dre_return_t dre_sys_remove_checkpoint(const dre_sys_handle *h, const char *tag);
dre_return_t dre_sys_remove_snapshot(const dre_sys_handle *h, const char *tag);
dre_return_t dre_sys_restart(const dre_sys_handle *h, const char *tag);
dre_return_t dre_sys_resume(const dre_sys_handle *h);
dre_return_t dre_sys_save_snapshot(const dre_sys_handle *h, const char *tag);
dre_return_t dre_sys_set_resource(const dre_sys_handle *h, const char *cgroup, dre_sys_resource_value_t *resource);
dre_return_t dre_sys_share(const dre_sys_handle *h);
dre_return_t dre_sys_start(const dre_sys_handle *h);
dre_return_t dre_sys_status(const dre_sys_handle *h);
dre_return_t dre_sys_stop(const dre_sys_handle *h);
dre_return_t dre_sys_suspend(const dre_sys_handle *h);
dre_return_t dre_sys_unbind_pid(const dre_sys_handle *h, const char *cgroup, const int pid);
dre_return_t dre_sys_unset_resource(const dre_sys_handle *h, const char *cgroup, dre_sys_resource_value_t *resource);
dre_return_t dre_sys_unshare(const dre_sys_handle *h);

#ifdef __cplusplus
}
#endif

#endif
