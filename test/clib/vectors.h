/*
 * The runner of test/clib/vectors.json for the C programs (app.c, sys.c): reads the steps of one
 * section, resolves each argument, lets the program call the function, prints "INDEX FN GOT CONTAINS"
 * per step (the TypeScript test compares). Usage: PROGRAM VECTORS.json KIND PREFIX SLEEPER_PID
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum arg_kind { A_NULL, A_INT, A_STR, A_HANDLE, A_OUT_LIST, A_OUT_PID, A_LIST, A_OBJ };
struct arg {
    enum arg_kind kind;
    int i;
    const char *s;
    const char *handle; /* the saved handle's name */
    json_object *o;
};

struct run {
    const char *prefix;
    int sleeper;
    int pid;                 /* the last pid get_pid read */
    int inpid, invpid;       /* the process the last exec step started in the container */
    const char *names[8];    /* saved handles, by name */
    void *handles[8];
    char text[4][128];       /* the step's resolved strings */
    struct arg args[4];
    int nargs;
    void *opened;            /* the handle the last open returned */
};

static void *saved_handle(struct run *r, const char *name)
{
    for (int i = 0; i < 8; i++)
        if (r->names[i] != NULL && strcmp(r->names[i], name) == 0) return r->handles[i];
    return NULL;
}

static void save_handle(struct run *r, const char *name, void *h)
{
    for (int i = 0; i < 8; i++)
        if (r->names[i] == NULL || strcmp(r->names[i], name) == 0) {
            r->names[i] = name;
            r->handles[i] = h;
            return;
        }
}

/* A $ name's text (or a plain string as it is). */
static const char *resolve_text(struct run *r, int slot, const char *s)
{
    if (s[0] != '$') return s;
    if (strcmp(s, "$long") == 0) {
        memset(r->text[slot], 'a', 65);
        r->text[slot][65] = '\0';
    } else {
        snprintf(r->text[slot], sizeof r->text[slot], "%s%s", r->prefix, s + 1);
    }
    return r->text[slot];
}

static void resolve(struct run *r, json_object *args)
{
    r->nargs = (int)json_object_array_length(args);
    for (int i = 0; i < r->nargs && i < 4; i++) {
        json_object *a = json_object_array_get_idx(args, i);
        struct arg *x = &r->args[i];
        memset(x, 0, sizeof *x);
        if (a == NULL) {
            x->kind = A_NULL;
        } else if (json_object_is_type(a, json_type_int)) {
            x->kind = A_INT;
            x->i = json_object_get_int(a);
        } else if (json_object_is_type(a, json_type_object)) {
            x->kind = A_OBJ;
            x->o = a;
        } else {
            const char *s = json_object_get_string(a);
            if (s[0] == '@') x->kind = A_HANDLE, x->handle = s + 1;
            else if (strcmp(s, "&list") == 0) x->kind = A_OUT_LIST;
            else if (strcmp(s, "&pid") == 0) x->kind = A_OUT_PID;
            else if (strcmp(s, "*list") == 0) x->kind = A_LIST;
            else if (strcmp(s, "$sleeper") == 0) x->kind = A_INT, x->i = r->sleeper;
            else if (strcmp(s, "$pid") == 0) x->kind = A_INT, x->i = r->pid;
            else if (strcmp(s, "$inpid") == 0) x->kind = A_INT, x->i = r->inpid;
            else if (strcmp(s, "$invpid") == 0) x->kind = A_INT, x->i = r->invpid;
            else x->kind = A_STR, x->s = resolve_text(r, i, s);
        }
    }
}

/* Field KEY of an argument's object as an int (0 when absent) or a string (NULL when absent, $ names resolved). */
static int obj_int(struct arg *a, const char *key)
{
    json_object *v;
    return a->o != NULL && json_object_object_get_ex(a->o, key, &v) ? json_object_get_int(v) : 0;
}
static const char *obj_str(struct run *r, struct arg *a, const char *key)
{
    json_object *v;
    if (a->o == NULL || !json_object_object_get_ex(a->o, key, &v) || v == NULL) return NULL;
    return resolve_text(r, 3, json_object_get_string(v));
}

#define STR(k) (r->args[k].kind == A_STR ? r->args[k].s : NULL)
#define INT(k) (r->args[k].i)
#define HANDLE(k) (r->args[k].kind == A_HANDLE ? saved_handle(r, r->args[k].handle) : NULL)
#define IS(name) (strcmp(fn, name) == 0)

/* The program's part: calls FN with the resolved arguments; returns its code (open: 1 handle, 0 NULL). */
static int call(struct run *r, const char *fn);
/* Whether the last list got holds NAME. */
static int list_contains(const char *name);

/* Whether /proc/PID/cmdline has an argument equal to MARKER. */
static int has_marker(const char *pid, const char *marker)
{
    char path[300], buf[4096];
    snprintf(path, sizeof path, "/proc/%s/cmdline", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    for (size_t i = 0; i < n; i += strlen(buf + i) + 1)
        if (strcmp(buf + i, marker) == 0) return 1;
    return 0;
}

/* The exec step: a shell loop named MARKER started in container NAME through dre-app ($DRE_VEC_CLI); finds its PIDs. */
static int exec_inside(struct run *r, const char *name, const char *marker)
{
    char cmd[1024];
    const char *cli = getenv("DRE_VEC_CLI");
    if (cli == NULL) return -1;
    snprintf(cmd, sizeof cmd, "%s exec %s -- sh -c \"sh -c 'while sleep 1; do :; done; :' %s </dev/null >/dev/null 2>&1 &\"", cli, name, marker);
    int status = system(cmd);
    if (status != 0) return status;
    for (int tries = 0; tries < 100; tries++) {
        DIR *d = opendir("/proc");
        struct dirent *e;
        while (d != NULL && (e = readdir(d)) != NULL) {
            if (e->d_name[0] < '0' || e->d_name[0] > '9' || !has_marker(e->d_name, marker)) continue;
            char path[300], line[256];
            snprintf(path, sizeof path, "/proc/%s/status", e->d_name);
            FILE *f = fopen(path, "r");
            while (f != NULL && fgets(line, sizeof line, f) != NULL) {
                if (strncmp(line, "NSpid:", 6) != 0) continue;
                char *last = strrchr(line, '\t');
                r->invpid = atoi(last != NULL ? last + 1 : line + 6);
                r->inpid = atoi(e->d_name);
            }
            if (f != NULL) fclose(f);
            closedir(d);
            return 0;
        }
        if (d != NULL) closedir(d);
        usleep(50000);
    }
    return -1;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s VECTORS.json KIND PREFIX SLEEPER_PID\n", argv[0]);
        return 2;
    }
    json_object *all = json_object_from_file(argv[1]), *steps;
    if (all == NULL || !json_object_object_get_ex(all, argv[2], &steps)) {
        fprintf(stderr, "%s: no section %s\n", argv[1], argv[2]);
        return 2;
    }
    struct run r = { .prefix = argv[3], .sleeper = atoi(argv[4]) };
    for (size_t i = 0; i < json_object_array_length(steps); i++) {
        json_object *step = json_object_array_get_idx(steps, i), *v;
        const char *fn = json_object_get_string(json_object_object_get_ex(step, "fn", &v) ? v : NULL);
        json_object_object_get_ex(step, "args", &v);
        resolve(&r, v);
        r.opened = NULL;
        if (strcmp(fn, "exec") == 0) {
            char marker[128];
            snprintf(marker, sizeof marker, "%sin%zu", r.prefix, i);
            printf("%zu exec %d -\n", i, exec_inside(&r, r.args[0].s, marker));
            fflush(stdout);
            continue;
        }
        int got = call(&r, fn);
        if (strstr(fn, "_open") != NULL) {
            if (r.opened != NULL && json_object_object_get_ex(step, "as", &v)) save_handle(&r, json_object_get_string(v), r.opened);
            printf("%zu %s %s", i, fn, got ? "handle" : "null");
        } else {
            printf("%zu %s %d", i, fn, got);
        }
        if (json_object_object_get_ex(step, "contains", &v)) printf(" %d\n", list_contains(resolve_text(&r, 3, json_object_get_string(v))));
        else printf(" -\n");
        fflush(stdout);
    }
    json_object_put(all);
    return 0;
}
