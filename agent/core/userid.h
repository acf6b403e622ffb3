/* User identifier kinds: what the identity layer is told (or works out) an
 * identifier is, so each resolver can ask its directory the right question
 * (Microsoft Graph filters on mail/userPrincipalName, onPremisesSamAccountName,
 * onPremisesSecurityIdentifier, id or employeeId). Pure functions. */
#ifndef RTR_USERID_H
#define RTR_USERID_H

#include "str.h"

enum user_kind {
    USER_KIND_AUTO, /* mappings only: detect from the text */
    USER_KIND_EMAIL,
    USER_KIND_UPN,
    USER_KIND_SAM, /* DOMAIN\user or bare user (sAMAccountName) */
    USER_KIND_SID, /* S-1-5-21-... */
    USER_KIND_GUID,
    USER_KIND_EMPLOYEE_ID,
};

/* "auto", "email", "upn", "sam", "sid", "guid", "employee_id"; NULL-ended,
 * in enum order (config tables use it as their choices). */
extern const char *const userid_kind_names[];

const char *userid_kind_name(enum user_kind k);

/* The kind of id (never USER_KIND_AUTO):
 *   S-1-<digits>(-<digits>)+               sid
 *   8-4-4-4-12 hex digits (braces allowed) guid
 *   digits only                            employee_id
 *   contains '@'                           upn (email and UPN look alike;
 *                                          resolvers try both, #EXT# guests
 *                                          included)
 *   anything else (DOMAIN\user, user)      sam */
enum user_kind userid_detect(struct str id);

/* kind, or the detected kind when kind is USER_KIND_AUTO. */
enum user_kind userid_resolve_kind(enum user_kind kind, struct str id);

/* The sAMAccountName part of DOMAIN\user (the whole id when there is no
 * backslash). */
struct str userid_sam_account(struct str id);

#endif
