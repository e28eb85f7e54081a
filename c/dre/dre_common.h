/*
 * dre_common.h: what dre_app.h and dre_sys.h share (spec D-RE APIs E1.02, section 1.1).
 * Include dre_app.h or dre_sys.h rather than this file.
 */
#ifndef DRE_COMMON_H
#define DRE_COMMON_H

#ifdef __cplusplus
extern "C" {
#endif

/* 1.1.2.1 Error code. */
typedef enum {
    DRE_ERR_INVALID_ARGUMENT          = -101, /* Invalid argument */
    DRE_ERR_PERMISSION_DENIED         = -102, /* No privilege to run */
    DRE_ERR_DAWARE_MOD_NONEXISTENCE   = -103, /* Daware.mod is not available */
    DRE_ERR_NO_VT                     = -104, /* Intel-VT and AMD-V are not available */
    DRE_ERR_CONTAINER_NONEXISTENCE    = -111, /* The container does not exist */
    DRE_ERR_CONTAINER_EXISTENCE       = -112, /* The container already exists */
    DRE_ERR_CONTAINER_RUNNING         = -113, /* The container is running contrary to expectations */
    DRE_ERR_CONTAINER_STOPPED         = -114, /* The container is stopped contrary to expectations */
    DRE_ERR_CONTAINER_SUSPENDED       = -115, /* The container is suspended contrary to expectations */
    DRE_ERR_CONTAINER_BUSY            = -116, /* The container is busy */
    DRE_ERR_CONTAINER_UNKNOWN_STATUS  = -117, /* The status of the container is unknown */
    DRE_ERR_BASE_NONEXISTENCE         = -121, /* The Base Image does not exist */
    DRE_ERR_BASE_EXISTENCE            = -122, /* The Base Image already exists */
    DRE_ERR_REMOVE_BASE_FAILED        = -123, /* Failed to remove the Base Image */
    DRE_ERR_SNAPSHOT_NONEXISTENCE     = -131, /* The snapshot does not exist */
    DRE_ERR_SNAPSHOT_EXISTENCE        = -132, /* The snapshot already exists */
    DRE_ERR_SAVE_SNAPSHOT_FAILED      = -133, /* Failed to save the snapshot */
    DRE_ERR_LOAD_SNAPSHOT_FAILED      = -134, /* Failed to load the snapshot */
    DRE_ERR_REMOVE_SNAPSHOT_FAILED    = -135, /* Failed to remove the snapshot/checkpoint */
    DRE_ERR_COMMIT_SNAPSHOT_FAILED    = -136, /* Failed to commit the snapshot */
    DRE_ERR_CGROUP_NONEXISTENCE       = -141, /* The Control Group does not exist */
    DRE_ERR_CGROUP_EXISTENCE          = -142, /* The Control Group already exists */
    DRE_ERR_PID_NONEXISTENCE          = -143, /* The process with the specified PID does not exist */
    DRE_ERR_SET_LIMIT_FAILED          = -144, /* Failed to set the limitation of resource usage */
    DRE_ERR_UNSET_LIMIT_FAILED        = -145, /* Failed to unset the limitation of resource usage */
    DRE_ERR_DESTROY_CGROUP_FAILED     = -146, /* Failed to remove the Control Group */
    DRE_ERR_DEVICE_BUSY               = -151, /* No response from the device */
    DRE_ERR_NO_TAP_AVAILABLE          = -152, /* No TAP device is available */
    DRE_ERR_NO_SOCKET_AVAILABLE       = -153, /* No socket is available (here: no D-RE daemon answers) */
    DRE_ERR_NFS_MOUNT_FAILED          = -154, /* Failed to mount NFS server */
    DRE_ERR_BIND_FAILED               = -155, /* Failed to bind PID */
    DRE_ERR_INVALID_HOSTNAME          = -156, /* Invalid host name */
    DRE_ERR_NULL_POINTER              = -201, /* Null pointer */
    DRE_ERR_REQUEST_TOO_LONG          = -202  /* Request is too long */
} dre_err_t;

/* 1.1.3.2 The name of the container. */
typedef char *                dre_name_t;
/* 1.1.3.1 The list of the containers: a NULL-terminated array of names, freed with its release function. */
typedef dre_name_t *          dre_list_t;
/* 1.1.3.3 Return values. */
typedef int                   dre_return_t;

#ifdef __cplusplus
}
#endif

#endif
