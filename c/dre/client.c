/*
 * client.c: the part of libdreapp and libdresys that talks to dred (contract: /1.0 REST over
 * HTTP/1.1 on $DRE_RUNDIR/dred.sock, errors as {"error","code","message"}, long work as operations
 * waited on with /wait), checks arguments as the TypeScript spec layer does, and keeps the registry
 * of the handles and lists given to callers.
 */
#define _GNU_SOURCE
#include "client.h"

#include <curl/curl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CONNECT_TIMEOUT_MS 2000L          /* no daemon -> NO_SOCKET_AVAILABLE in about 2 s at worst */
#define REQUEST_TIMEOUT_MS 600000L        /* a synchronous call (a stop waits for the guest) */
#define WAIT_SECONDS 30                   /* one /wait of a background operation */
#define OPERATION_LIMIT_S 3600            /* a background operation followed for at most this long */
#define REPLY_MAX (16L << 20)             /* a reply larger than this is not dred's */

/* ---- argument checks (src/core/names.ts checkName, src/spec/common.ts handleName, pidArg) ---- */

int dre__check_name(const char *name)
{
    if (name == NULL) return DRE_ERR_NULL_POINTER;
    size_t n = strnlen(name, DRE__NAME_MAX + 1);
    if (n > DRE__NAME_MAX) return DRE_ERR_REQUEST_TOO_LONG;
    if (n == 0 || name[0] == '.' || name[0] == '-') return DRE_ERR_INVALID_ARGUMENT;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
            return DRE_ERR_INVALID_ARGUMENT;
    }
    return 0;
}

int dre__check_handle(int present, int type, int want, const char *name)
{
    if (!present) return DRE_ERR_NULL_POINTER;
    if (type != want) return DRE_ERR_INVALID_ARGUMENT;
    return dre__check_name(name);
}

int dre__check_pid(int pid)
{
    return pid >= 1 ? 0 : DRE_ERR_INVALID_ARGUMENT;
}

/* ---- registry of what callers hold: a pointer set, and the retired handles kept for reuse ---- */

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static void **tracked;
static size_t tracked_n, tracked_cap;
static void **retired;
static size_t retired_n, retired_cap;

static int push(void ***arr, size_t *n, size_t *cap, void *p)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        void **a = realloc(*arr, c * sizeof *a);
        if (a == NULL) return -1;
        *arr = a;
        *cap = c;
    }
    (*arr)[(*n)++] = p;
    return 0;
}

static int take(void **arr, size_t *n, const void *p)
{
    for (size_t i = 0; i < *n; i++) {
        if (arr[i] == p) {
            arr[i] = arr[--*n];
            return 1;
        }
    }
    return 0;
}

void dre__track(void *p)
{
    pthread_mutex_lock(&registry_lock);
    push(&tracked, &tracked_n, &tracked_cap, p); /* untracked on no memory: its release then says INVALID_ARGUMENT */
    pthread_mutex_unlock(&registry_lock);
}

int dre__untrack(void *p)
{
    pthread_mutex_lock(&registry_lock);
    int had = take(tracked, &tracked_n, p);
    pthread_mutex_unlock(&registry_lock);
    return had;
}

void *dre__handle_alloc(size_t size)
{
    void *h = NULL;
    pthread_mutex_lock(&registry_lock);
    if (retired_n > 0) h = retired[--retired_n]; /* every handle type has the same size */
    pthread_mutex_unlock(&registry_lock);
    if (h == NULL) h = malloc(size);
    if (h != NULL) dre__track(h);
    return h;
}

int dre__handle_retire(const void *h)
{
    pthread_mutex_lock(&registry_lock);
    int ours = take(tracked, &tracked_n, h);
    /* Kept, not freed: a later use of the stale pointer reads the poisoned type instead of freed memory. */
    if (ours && push(&retired, &retired_n, &retired_cap, (void *)h) != 0) free((void *)h);
    pthread_mutex_unlock(&registry_lock);
    return ours;
}

/* ---- HTTP over the unix socket ---- */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static pthread_key_t curl_key;

static void cleanup_curl(void *c) { curl_easy_cleanup(c); }

static void init(void)
{
    curl_global_init(CURL_GLOBAL_NOTHING); /* no TLS: the socket is local */
    pthread_key_create(&curl_key, cleanup_curl);
}

struct conn {
    CURL *curl;
    pid_t pid;
};
static __thread struct conn conn;

/* This thread's handle: kept between calls so that the connection to dred is reused (keep-alive). */
static CURL *thread_curl(void)
{
    pthread_once(&init_once, init);
    if (conn.curl != NULL && conn.pid != getpid()) {
        curl_easy_cleanup(conn.curl); /* a forked child does not share its parent's connection */
        conn.curl = NULL;
    }
    if (conn.curl == NULL) {
        conn.curl = curl_easy_init();
        conn.pid = getpid();
        pthread_setspecific(curl_key, conn.curl);
    } else {
        curl_easy_reset(conn.curl);
    }
    return conn.curl;
}

struct buffer {
    char *data;
    size_t len;
};

static size_t collect(char *chunk, size_t size, size_t n, void *user)
{
    struct buffer *b = user;
    size_t add = size * n;
    if (b->len + add > (size_t)REPLY_MAX) return 0; /* aborts the transfer */
    char *d = realloc(b->data, b->len + add + 1);
    if (d == NULL) return 0;
    memcpy(d + b->len, chunk, add);
    b->data = d;
    b->len += add;
    b->data[b->len] = '\0';
    return add;
}

static int socket_path(char *out, size_t size)
{
    const char *rundir = getenv("DRE_RUNDIR");
    if (rundir == NULL || rundir[0] == '\0') rundir = "/run/dre";
    int n = snprintf(out, size, "%s/dred.sock", rundir);
    return n > 0 && (size_t)n < sizeof(((struct sockaddr_un *)0)->sun_path) ? 0 : -1;
}

/* One exchange; 0 with *status and *reply (parsed JSON), or NO_SOCKET_AVAILABLE when no daemon answered. */
static int exchange(const char *method, const char *path, const char *body, long timeout_ms, long *status, json_object **reply)
{
    char sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char url[2048];
    if (socket_path(sock, sizeof sock) != 0) return DRE_ERR_NO_SOCKET_AVAILABLE;
    if (snprintf(url, sizeof url, "http://dred%s", path) >= (int)sizeof url) return DRE_ERR_REQUEST_TOO_LONG;
    CURL *c = thread_curl();
    if (c == NULL) return DRE_ERR_NO_SOCKET_AVAILABLE;
    struct buffer b = { NULL, 0 };
    struct curl_slist *headers = NULL;
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Expect:");
    curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(headers);
    int r = DRE_ERR_NO_SOCKET_AVAILABLE;
    if (rc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
        *reply = b.data != NULL ? json_tokener_parse(b.data) : NULL;
        if (*reply != NULL) r = 0; /* a body that is not JSON is not dred's */
    }
    free(b.data);
    return r;
}

/* The dre_err_t of an error body {"error","code","message"}; a body without one is not dred's. */
static int error_code(json_object *err)
{
    json_object *code;
    if (err != NULL && json_object_object_get_ex(err, "code", &code) && json_object_is_type(code, json_type_int)) {
        int v = json_object_get_int(code);
        if (v < 0) return v;
    }
    return DRE_ERR_NO_SOCKET_AVAILABLE;
}

static const char *string_field(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* Waits on a background operation (contract: loop on /wait until it is no longer running). */
static int wait_operation(json_object *op, json_object **reply)
{
    time_t deadline = time(NULL) + OPERATION_LIMIT_S;
    json_object_get(op);
    for (;;) {
        const char *status = string_field(op, "status");
        const char *id = string_field(op, "id");
        if (status == NULL || id == NULL) break;
        if (strcmp(status, "success") == 0) {
            if (reply != NULL) {
                json_object *result = NULL;
                json_object_object_get_ex(op, "result", &result);
                *reply = json_object_get(result);
            }
            json_object_put(op);
            return 0;
        }
        if (strcmp(status, "running") != 0) {
            json_object *err = NULL;
            json_object_object_get_ex(op, "error", &err);
            int r = error_code(err);
            json_object_put(op);
            return r;
        }
        if (time(NULL) > deadline) break;
        char path[256];
        char *eid = curl_easy_escape(NULL, id, 0);
        snprintf(path, sizeof path, "/1.0/operations/%s/wait?timeout=%d", eid ? eid : "", WAIT_SECONDS);
        curl_free(eid);
        long http = 0;
        json_object *next = NULL;
        int r = exchange("GET", path, NULL, (WAIT_SECONDS + 15) * 1000L, &http, &next);
        json_object_put(op);
        if (r != 0) return r;
        if (http != 200) {
            r = error_code(next);
            json_object_put(next);
            return r;
        }
        op = next;
    }
    json_object_put(op);
    return DRE_ERR_NO_SOCKET_AVAILABLE;
}

/* PATH from FMT: %s an escaped segment, %d an int, %q a string as it is. */
static int format_path(char *out, size_t size, const char *fmt, va_list ap)
{
    size_t n = 0;
    for (const char *f = fmt; *f; f++) {
        char piece[32];
        const char *text = piece;
        char *escaped = NULL;
        if (*f != '%') {
            piece[0] = *f;
            piece[1] = '\0';
        } else if (*++f == 's') {
            escaped = curl_easy_escape(NULL, va_arg(ap, const char *), 0);
            text = escaped;
        } else if (*f == 'q') {
            text = va_arg(ap, const char *);
        } else if (*f == 'd') {
            snprintf(piece, sizeof piece, "%d", va_arg(ap, int));
        } else {
            return -1;
        }
        size_t len = text ? strlen(text) : 0;
        if (text == NULL || n + len >= size) {
            curl_free(escaped);
            return -1;
        }
        memcpy(out + n, text, len);
        n += len;
        curl_free(escaped);
    }
    out[n] = '\0';
    return 0;
}

int dre__request(const char *method, json_object *body, json_object **reply, const char *fmt, ...)
{
    char path[1024];
    va_list ap;
    va_start(ap, fmt);
    int bad = format_path(path, sizeof path, fmt, ap);
    va_end(ap);
    if (reply != NULL) *reply = NULL;
    if (bad) {
        json_object_put(body);
        return DRE_ERR_REQUEST_TOO_LONG;
    }
    const char *text = body != NULL ? json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN) : NULL;
    long http = 0;
    json_object *got = NULL;
    int r = exchange(method, path, text, REQUEST_TIMEOUT_MS, &http, &got);
    json_object_put(body);
    if (r != 0) return r;
    if (http == 202) {
        r = wait_operation(got, reply);
    } else if (http == 200) {
        if (reply != NULL) {
            *reply = got;
            return 0;
        }
        r = 0;
    } else {
        r = error_code(got);
    }
    json_object_put(got);
    return r;
}

json_object *dre__obj_str(const char *key, const char *value)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, key, value != NULL ? json_object_new_string(value) : NULL);
    return o;
}

json_object *dre__obj_int(const char *key, int value)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, key, json_object_new_int(value));
    return o;
}

/* ---- name lists ---- */

int dre__names(json_object *reply, const char *key, dre_list_t *list)
{
    json_object *arr;
    int r = DRE_ERR_NO_SOCKET_AVAILABLE;
    if (json_object_object_get_ex(reply, key, &arr) && json_object_is_type(arr, json_type_array)) {
        size_t n = json_object_array_length(arr), i = 0;
        dre_list_t l = calloc(n + 1, sizeof *l);
        for (; l != NULL && i < n; i++) {
            const char *s = json_object_get_string(json_object_array_get_idx(arr, i));
            if ((l[i] = strdup(s ? s : "")) == NULL) break;
        }
        if (l != NULL && i == n) {
            dre__track(l);
            *list = l;
            r = 0;
        } else { /* out of memory: no half list */
            for (size_t j = 0; l != NULL && j < i; j++) free(l[j]);
            free(l);
            r = DRE_ERR_INVALID_ARGUMENT;
        }
    }
    json_object_put(reply);
    return r;
}

int dre__get_names(dre_list_t *list, const char *key, const char *fmt, const char *arg)
{
    if (list == NULL) return DRE_ERR_NULL_POINTER;
    *list = NULL;
    json_object *reply;
    int r = arg != NULL ? dre__request("GET", NULL, &reply, fmt, arg) : dre__request("GET", NULL, &reply, fmt);
    return r != 0 ? r : dre__names(reply, key, list);
}

int dre__release_names(dre_list_t list)
{
    if (list == NULL) return DRE_ERR_NULL_POINTER;
    if (!dre__untrack(list)) return DRE_ERR_INVALID_ARGUMENT; /* released already, or not from this library */
    for (dre_list_t p = list; *p != NULL; p++) free(*p);
    free(list);
    return 0;
}

/* ---- resources (src/spec/common.ts toResource / fillResource) ---- */

json_object *dre__resource_body(const struct dre__resource *r)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "type", json_object_new_int(r->type));
    switch (r->type) {
    case 1:
        json_object_object_add(o, "percent", json_object_new_int(r->number));
        break;
    case 2:
        if (r->cores != NULL) json_object_object_add(o, "cores", json_object_new_string(r->cores));
        break;
    case 3:
    case 4:
        json_object_object_add(o, "bytes", json_object_new_int(r->number));
        break;
    default:
        json_object_put(o);
        return NULL;
    }
    return o;
}

int dre__get_resource(const char *kind, const char *name, int pid, struct dre__resource *r)
{
    json_object *reply, *v;
    int rc = dre__request("GET", NULL, &reply, "/1.0/%q/containers/%s/usage?pid=%d&type=%d", kind, name, pid, r->type);
    if (rc != 0) return rc;
    if (r->type == 2) {
        const char *cores = string_field(reply, "cores");
        r->cores = cores != NULL ? strdup(cores) : NULL;
    } else {
        const char *key = r->type == 1 ? "percent" : "bytes";
        double x = json_object_object_get_ex(reply, key, &v) ? json_object_get_double(v) : 0;
        /* Math.round of the spec layer; bytes beyond the spec's int read as INT_MAX. */
        x = x + 0.5;
        r->number = x >= (double)INT_MAX ? INT_MAX : x <= 0 ? 0 : (int)x;
    }
    json_object_put(reply);
    return 0;
}
