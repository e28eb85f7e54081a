/*
 * dre_app.h: the D-RE API for Application Containers (LXC), spec D-RE APIs E1.02, section 1.2.
 * Link with libdreapp: cc prog.c $(pkg-config --cflags --libs dreapp)
 *
 * Every function is synchronous and asks the D-RE daemon `dred` over HTTP/1.1 on the unix socket
 * $DRE_RUNDIR/dred.sock (DRE_RUNDIR defaults to /run/dre; the daemon must run as root).
 *
 * No daemon: when nothing answers on that socket (no socket file, connection refused, no answer in
 * time) every function returns DRE_ERR_NO_SOCKET_AVAILABLE (-153) and dre_app_open returns NULL. A
 * call never hangs: connecting gives up after 2 s, a request after 10 minutes, and long work
 * (create, commit, checkpoint, restart) is followed on the daemon in 30 s waits for at most one hour.
 *
 * Arguments are checked before anything is sent: NULL -> DRE_ERR_NULL_POINTER; a name (container,
 * snapshot, checkpoint, Base Image, Control Group) over 64 characters -> DRE_ERR_REQUEST_TOO_LONG;
 * another malformed name (use A-Z a-z 0-9 _ . -, not starting with . or -) -> DRE_ERR_INVALID_ARGUMENT.
 *
 * Memory: handles come from dre_app_open and go back with dre_app_close; a closed handle is
 * refused with DRE_ERR_INVALID_ARGUMENT (its memory is kept for the next dre_app_open, so the stale
 * pointer is caught until then). Lists come from the get_*_list functions and go back with the
 * matching release function; releasing NULL -> DRE_ERR_NULL_POINTER, a list that was already
 * released (or is not the library's) -> DRE_ERR_INVALID_ARGUMENT. dre_app_get_resource of
 * DRE_APP_CONTAINER_RESOURCE_CPU_CORE sets udata.cpu.cores to a string the caller frees with free().
 * All functions may be called from several threads.
 */
#ifndef DRE_APP_H
#define DRE_APP_H

#include "dre_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1.2.2.1 The type of the resource. */
typedef enum {
    DRE_APP_CONTAINER_RESOURCE_CPU = 1,        /* CPU */
    DRE_APP_CONTAINER_RESOURCE_CPU_CORE,       /* CPU core(s) */
    DRE_APP_CONTAINER_RESOURCE_MEMORY,         /* Memory */
    DRE_APP_CONTAINER_RESOURCE_MEMSW           /* Memory and swap */
} dre_app_resource_t;

/* 1.2.2.2 The status of the container. */
typedef enum {
    DRE_APP_CONTAINER_STATUS_STOP = 11,        /* The container is stopped. */
    DRE_APP_CONTAINER_STATUS_RUNNING,          /* The container is running. */
    DRE_APP_CONTAINER_STATUS_SUSPENDED,        /* The container is suspended. */
    DRE_APP_CONTAINER_STATUS_BUSY              /* The container is busy. */
} dre_app_status_t;

/* 1.2.2.3 The type of the Application Container. */
typedef enum {
    DRE_APP_CONTAINER_TYPE_LXC = 1             /* LXC */
} dre_app_type_t;

/*
 * 1.2.3.1 The configuration of the container. The spec prints `lxc` as a union under the name
 * dre_app_handle; port and base are both used, so `lxc` is a struct here (same field names).
 * port 0 = no SSH port, base NULL = the default Base Image.
 */
typedef struct {
    dre_app_type_t type;        /* The type of the container */
    union {
        struct {
            int port;           /* The port number for SSH on the container */
            char *base;         /* The name of the Base Image (NULL for default) */
        } lxc;
    } udata;
} dre_app_data;

/* 1.2.3.2 The handle of the Application Container. */
typedef struct {
    dre_app_type_t type;        /* The type of the container */
    char *name;                 /* The name of the container */
} dre_app_handle;

/* 1.2.3.3 The Process ID of a process in the Application Container. */
typedef struct {
    int pid;                    /* The Process ID assigned at the Host OS */
    int vpid;                   /* The Process ID assigned at the Application Container */
} dre_app_pid_t;

/* 1.2.3.4 Resource usage. CPU percent is a whole number; bytes beyond INT_MAX read as INT_MAX. */
typedef struct {
    dre_app_resource_t type;    /* The type of the resource */
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
} dre_app_resource_value_t;

/* 1.2.4.1 The list of the PIDs: a NULL-terminated array of pointers, freed with
   dre_app_release_registered_pid_list. (1.2.5.14's prototype spells it dre_pid_list_t.) */
typedef dre_app_pid_t ** dre_app_pid_list_t;
typedef dre_app_pid_list_t dre_pid_list_t;

/* 1.2.5 Functions. dre_app_status returns a dre_app_status_t (11-14) or a dre_err_t; the others 0 or a dre_err_t. */
dre_return_t dre_app_bind_pid(const dre_app_handle *h, const char *cgroup, const int pid);
dre_return_t dre_app_bind_vpid(const dre_app_handle *h, const char *cgroup, const int vpid);
dre_return_t dre_app_checkpoint(const dre_app_handle *h, const char *tag);
dre_return_t dre_app_close(const dre_app_handle *h);
dre_return_t dre_app_commit_snapshot(const dre_app_handle *h, const char *tag, const char *base);
dre_return_t dre_app_create_cgroup(const dre_app_handle *h, const char *cgroup);
dre_return_t dre_app_create_container(const char *name, const dre_app_data *data);
dre_return_t dre_app_destroy_cgroup(const dre_app_handle *h, const char *cgroup);
dre_return_t dre_app_destroy_container(const char *name);
dre_return_t dre_app_get_base_list(dre_list_t *list);
dre_return_t dre_app_get_checkpoint_list(const dre_app_handle *h, dre_list_t *list);
dre_return_t dre_app_get_container_list(dre_list_t *list);
dre_return_t dre_app_get_pid(const dre_app_handle *h, int *pid);
dre_return_t dre_app_get_registered_pid_list(const dre_app_handle *h, dre_pid_list_t *list);
dre_return_t dre_app_get_resource(const dre_app_handle *h, const int pid, dre_app_resource_value_t *resource);
dre_return_t dre_app_get_snapshot_list(const dre_app_handle *h, dre_list_t *list);
dre_return_t dre_app_load_snapshot(const dre_app_handle *h, const char *tag);
dre_app_handle *dre_app_open(const char *name);
dre_return_t dre_app_register_pid(const dre_app_handle *h, const int pid);
dre_return_t dre_app_register_vpid(const dre_app_handle *h, const int vpid);
dre_return_t dre_app_release_base_list(dre_list_t list);
dre_return_t dre_app_release_checkpoint_list(dre_list_t list);
dre_return_t dre_app_release_container_list(dre_list_t list);
dre_return_t dre_app_release_registered_pid_list(dre_app_pid_list_t list);
dre_return_t dre_app_release_snapshot_list(dre_list_t list);
dre_return_t dre_app_remove_base(const char *base);
dre_return_t dre_app_remove_checkpoint(const dre_app_handle *h, const char *tag);
dre_return_t dre_app_remove_snapshot(const dre_app_handle *h, const char *tag);
dre_return_t dre_app_restart(const dre_app_handle *h, const char *tag);
dre_return_t dre_app_resume(const dre_app_handle *h);
dre_return_t dre_app_save_snapshot(const dre_app_handle *h, const char *tag);
dre_return_t dre_app_set_resource(const dre_app_handle *h, const char *cgroup, dre_app_resource_value_t *resource);
dre_return_t dre_app_start(const dre_app_handle *h);
dre_return_t dre_app_status(const dre_app_handle *h);
dre_return_t dre_app_stop(const dre_app_handle *h);
dre_return_t dre_app_suspend(const dre_app_handle *h);
dre_return_t dre_app_unbind_pid(const dre_app_handle *h, const char *cgroup, const int pid);
dre_return_t dre_app_unbind_vpid(const dre_app_handle *h, const char *cgroup, const int vpid);
dre_return_t dre_app_unregister_pid(const dre_app_handle *h, const int pid);
dre_return_t dre_app_unregister_vpid(const dre_app_handle *h, const int vpid);
dre_return_t dre_app_unset_resource(const dre_app_handle *h, const char *cgroup, dre_app_resource_value_t *resource);

#ifdef __cplusplus
}
#endif

#endif
