#include "version.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <openssl/crypto.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* The git commit the build came from ("4c5a81d2e0f1", "-dirty" with
 * local changes): the Makefile defines RTR_COMMIT for this file alone when
 * it builds from a git checkout; a build from a tarball has none. */
#ifdef RTR_COMMIT
#define VERSION_COMMIT " (git " RTR_COMMIT ")"
#else
#define VERSION_COMMIT ""
#endif

const char *version_text(void)
{
    return RTR_VERSION VERSION_COMMIT;
}

void version_print(FILE *f)
{
    char pcre2_version[64] = "unknown";

    pcre2_config(PCRE2_CONFIG_VERSION, pcre2_version);
    fprintf(f, "rtr-agent %s\n", version_text());
    fprintf(f, "libevent %s\n", event_get_version());
    fprintf(f, "pcre2 %s\n", pcre2_version);
    fprintf(f, "json-c %s\n", json_c_version());
    fprintf(f, "%s\n", curl_version());
    fprintf(f, "%s\n", OpenSSL_version(OPENSSL_VERSION));
}
