#include "reload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "errors.h"
#include "core/json_file.h"
#include "core/log.h"
#include "decide/policy.h"
#include "ingest/http_key.h"
#include "ingest/tls.h"

struct reload {
    const struct config *cfg;
    /* The configuration file's JSON as read at start: what a SIGHUP
     * compares the file with. */
    struct json_object *json;
};

int reload_new(const struct config *cfg, struct reload **out)
{
    struct reload *r;
    int rc;

    *out = NULL;
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return ERR_NOMEM;
    r->cfg = cfg;
    rc = json_file_read(cfg->path, "config", &r->json);
    if (rc == 0 && !json_object_is_type(r->json, json_type_object)) {
        log_error("%s: changed while starting: no longer a JSON object", cfg->path);
        rc = ERR_CONFIG;
    }
    if (rc != 0) {
        reload_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void reload_free(struct reload *r)
{
    if (r == NULL)
        return;
    json_object_put(r->json);
    free(r);
}

/* A policy's need the config does not meet, as a log line. */
static void reload_policy_problem(void *arg, const char *key, const char *why)
{
    log_error("%s: %s: %s", (const char *)arg, key, why);
}

int reload_load_mappings(const struct config *cfg, const struct limits_config *limits, int always,
                         struct mapping_set **out)
{
    *out = NULL;
    if (cfg->n_mappings == 0 && !always)
        return 0;
    if (policy_set_load(cfg, mapping_regex_flags(limits), out) != 0)
        return ERR_CONFIG;
    if (policy_config_check(*out, cfg, reload_policy_problem, cfg->path) > 0) {
        mapping_set_unref(*out);
        *out = NULL;
        return ERR_CONFIG;
    }
    return 0;
}

void reload_log_mappings(const char *what, const struct config *cfg, const struct mapping_set *set)
{
    size_t n = set != NULL ? mapping_set_count(set) : 0;
    size_t files = set != NULL ? mapping_set_files(set) : 0;
    char globs[1024] = "";
    size_t len = 0;

    for (size_t i = 0; i < cfg->n_mappings && len < sizeof(globs); i++)
        len += (size_t)snprintf(globs + len, sizeof(globs) - len, "%s%s", i ? ", " : " of ",
                                cfg->mappings[i]);
    log_info("%s%zu mapping%s from %zu file%s%s%s", what, n, n == 1 ? "" : "s", files,
             files == 1 ? "" : "s", globs, n == 0 ? ": no message will be decided on" : "");
}

/* The settings a SIGHUP applies, so what the comparison with the running
 * configuration leaves out: the key `key` of the top-level section
 * `section` (inside its object `object` when not NULL; the whole section
 * when key is NULL). both: only when both files set it, for
 * identity.static.file, whose presence decides the default identity.order:
 * adding or removing it changes the resolvers, which needs a restart. */
static const struct {
    const char *section, *object, *key;
    int both;
} reload_keys[] = {
    {"mappings", NULL, NULL, 0},
    {"identity", "static", "file", 1},
    {"audit", NULL, "file", 0},
};

/* obj's member key (NULL when obj is not an object, the key is absent, or
 * its value is null). */
static struct json_object *reload_member(struct json_object *obj, const char *key)
{
    struct json_object *v = NULL;

    if (!json_object_is_type(obj, json_type_object) || !json_object_object_get_ex(obj, key, &v))
        return NULL;
    return v;
}

/* The object in section that holds reloadable key i (maybe NULL). */
static struct json_object *reload_key_parent(struct json_object *section, size_t i)
{
    return reload_keys[i].object != NULL ? reload_member(section, reload_keys[i].object) : section;
}

/* Reloadable key i of section (NULL: not set). */
static struct json_object *reload_key(struct json_object *section, size_t i)
{
    return reload_member(reload_key_parent(section, i), reload_keys[i].key);
}

/* Removes reloadable key i from section, where it is set. */
static void reload_drop_key(struct json_object *section, size_t i)
{
    struct json_object *parent = reload_key_parent(section, i);

    if (json_object_is_type(parent, json_type_object))
        json_object_object_del(parent, reload_keys[i].key);
}

/* Absent, or an object with nothing left in it. */
static int reload_empty(struct json_object *section)
{
    return section == NULL || (json_object_is_type(section, json_type_object) &&
                               json_object_object_length(section) == 0);
}

/* Whether top-level section name reads the same in both files (a and b
 * may be NULL: absent), what a SIGHUP applies left out. */
static int reload_section_equal(const char *name, struct json_object *a, struct json_object *b)
{
    struct json_object *ca = NULL, *cb = NULL;
    int equal = 0;

    for (size_t i = 0; i < sizeof(reload_keys) / sizeof(reload_keys[0]); i++) {
        if (strcmp(name, reload_keys[i].section) != 0)
            continue;
        if (reload_keys[i].key == NULL)
            return 1;
        if (reload_keys[i].both && (reload_key(a, i) == NULL || reload_key(b, i) == NULL))
            break;
        /* Copies: the key goes from them, not from the running file's JSON.
         * Out of memory reads as "changed": a warning too many. */
        if ((a != NULL && json_object_deep_copy(a, &ca, NULL) != 0) ||
            (b != NULL && json_object_deep_copy(b, &cb, NULL) != 0))
            goto out;
        reload_drop_key(ca, i);
        reload_drop_key(cb, i);
        /* A section that only held the reloadable key reads as absent. */
        equal = (reload_empty(ca) && reload_empty(cb)) || json_object_equal(ca, cb);
        goto out;
    }
    equal = json_object_equal(a, b);
out:
    json_object_put(ca);
    json_object_put(cb);
    return equal;
}

static void reload_warn_changed(const struct reload *r, const char *name, struct json_object *now)
{
    if (!reload_section_equal(name, reload_member(r->json, name), now))
        log_warning("SIGHUP: %s: %s changed: restart rtr-agent to apply it", r->cfg->path, name);
}

/* One warning per top-level section of next (the file's JSON now) that
 * differs from the file at start, in the order of the running file, then
 * the sections only next has. */
static void reload_warn_restart(const struct reload *r, struct json_object *next)
{
    json_object_object_foreach(r->json, name, v)
    {
        (void)v;
        reload_warn_changed(r, name, reload_member(next, name));
    }
    json_object_object_foreach(next, added, now)
    {
        if (!json_object_object_get_ex(r->json, added, NULL))
            reload_warn_changed(r, added, now);
    }
}

/* The file is read twice, by config_load and then as JSON for the
 * comparison: an edit between the two reads could only miss or add a
 * warning. */
/* Every TLS listener's certificate, key and CRLs, and every HTTP
 * listener's API key, from the files the running configuration names (a
 * renewed certificate or a rotated key needs no restart). Returns nonzero
 * when one did not load (it keeps its running one). */
static int reload_tls(const struct endpoint *ep, size_t n_ep)
{
    int failed = 0, tls = 0, keys = 0;

    for (size_t i = 0; i < n_ep; i++) {
        if (ep[i].tls != NULL)
            failed |= tls_server_reload(ep[i].tls) != 0;
        if (ep[i].key != NULL)
            failed |= http_key_reload(ep[i].key) != 0;
        tls |= ep[i].tls != NULL;
        keys |= ep[i].key != NULL;
    }
    if (!failed && tls)
        log_info("SIGHUP: TLS certificates, keys and CRLs read again");
    if (!failed && keys)
        log_info("SIGHUP: HTTP listeners' API keys read again");
    return failed;
}

void reload_apply(struct reload *r, const struct endpoint *ep, size_t n_ep, struct worker **workers,
                  int n_workers, struct mapping_set **set, struct delivery *delivery,
                  int64_t counts_window_s)
{
    struct json_object *json = NULL;
    struct config *next = NULL;
    struct mapping_set *loaded = NULL;
    int tls_failed = reload_tls(ep, n_ep), failed;

    /* Each logs its problems, naming the file and the key. */
    if (config_load(r->cfg->path, &next) != 0 ||
        json_file_read(r->cfg->path, "config", &json) != 0 ||
        !json_object_is_type(json, json_type_object)) {
        log_error("SIGHUP: %s does not load: keeping the running configuration", r->cfg->path);
        json_object_put(json);
        config_free(next);
        delivery_reload(delivery, NULL, 1);
        return;
    }
    reload_warn_restart(r, json);
    json_object_put(json);
    failed = reload_load_mappings(next, &r->cfg->limits, 1, &loaded) != 0;
    if (!failed && policy_longest_window(loaded) > counts_window_s) {
        /* The counter's ring was sized at the start: a longer window would
         * read counts it never kept. */
        log_error("SIGHUP: the policies count alerts over %lld min, more than the %lld min the "
                  "running counter keeps (sized at the start): restart the agent to apply them; "
                  "the running mappings and policies stay in use",
                  (long long)(policy_longest_window(loaded) / 60),
                  (long long)(counts_window_s / 60));
        mapping_set_unref(loaded);
        loaded = NULL;
        failed = 1;
    } else if (failed) {
        log_error("SIGHUP: the mappings or policies did not load; the running ones stay in use");
    }
    if (!failed) {
        for (int i = 0; i < n_workers; i++)
            worker_set_mappings(workers[i], loaded);
        delivery_set_policies(delivery, loaded, NULL);
        mapping_set_unref(*set);
        *set = loaded; /* transferred */
        reload_log_mappings("SIGHUP: ", next, loaded);
    }
    delivery_reload(delivery, next, failed || tls_failed);
    config_free(next);
}
