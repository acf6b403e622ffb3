/* LDAP search filters that find one Active Directory user by an identifier
 * of a known kind (RFC 4515 string filters). Pure functions: no I/O, no
 * allocation, so the unit tests and a fuzzer drive them directly.
 *
 * Every assertion value is escaped (ldapfilter_escape): a user name is
 * attacker-controlled text (it comes from a log line), and an unescaped
 * '*' or ')' would widen the search to other users.
 *
 * The filter of a kind, inside
 *   (&(objectCategory=person)(objectClass=user)[disabled](...))
 * where [disabled] is (!(userAccountControl:1.2.840.113556.1.4.803:=2))
 * when disabled accounts are excluded (bit 2 of userAccountControl is
 * ACCOUNTDISABLE; 1.2.840.113556.1.4.803 is AD's bitwise AND rule, which
 * OpenLDAP knows as integerBitAndMatch):
 *   upn, email   (|(userPrincipalName=V)(mail=V)(proxyAddresses=smtp:V))
 *                (proxyAddresses is matched case-insensitively, so
 *                "smtp:" finds the primary "SMTP:" address too)
 *   sam          (sAMAccountName=V), V without its "DOMAIN\" part
 *   sid          (objectSid=\01\05...), the binary SID byte by byte
 *   guid         (objectGUID=\xx...), the 16 bytes in AD's order
 *   employee_id  (employeeID=V) */
#ifndef RTR_LDAPFILTER_H
#define RTR_LDAPFILTER_H

#include <stddef.h>
#include <stdint.h>

#include "core/userid.h"
#include "str.h"

/* Room (with the NUL) for the longest filter ldapfilter_build makes for an
 * identifier of IDENTITY_MAX_ID (1024) bytes: each byte escaped as three,
 * three times over (upn), plus the fixed parts (ldapfilter.c asserts it at
 * compile time). */
#define LDAPFILTER_MAX 10240

/* A binary SID's size at most: revision, count, 6-byte authority and 15
 * sub-authorities of 4 bytes. */
#define LDAPFILTER_SID_MAX 68

/* Writes value escaped for a filter's assertion value into buf, NUL-ended:
 * '*', '(', ')', '\\', NUL and every byte outside printable ASCII
 * (below 0x20, 0x7f and above) as a backslash and two lower-case hex
 * digits; any other byte as itself. Returns the length (without the NUL)
 * or ERR_TOOBIG when cap is too small (cap counts the NUL), buf then
 * holding "" (when cap > 0), never a value cut short. */
int ldapfilter_escape(struct str value, char *buf, size_t cap);

/* The binary form of a string SID "S-R-A-S1-S2-...": revision R (< 256),
 * the count of sub-authorities (1 to 15), the identifier authority A as 6
 * bytes big-endian (A < 2^48), then each sub-authority (< 2^32) as 4 bytes
 * little-endian. An upper-case 'S', then decimal digits only (leading zeros
 * allowed), no sign, no empty part, nothing around it. Returns the byte
 * count (8 + 4 * count) or ERR_INVALID. */
int ldapfilter_sid_binary(struct str sid, uint8_t out[LDAPFILTER_SID_MAX]);

/* The 16 bytes of a GUID "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (hex in
 * either case, braces around it allowed) in the order AD stores objectGUID:
 * the first three groups little-endian, the last two as written. Returns 0
 * or ERR_INVALID. */
int ldapfilter_guid_binary(struct str guid, uint8_t out[16]);

/* The "DOMAIN" of "DOMAIN\user" (up to the first backslash), a slice of
 * id; its length is 0 when id has no backslash or starts with one. */
struct str ldapfilter_sam_domain(struct str id);

/* Writes the filter that finds user as kind into buf, NUL-ended (see the
 * top); a sam's value is userid_sam_account's (after the last backslash).
 * exclude_disabled adds the userAccountControl clause. Returns the length,
 * ERR_INVALID (USER_KIND_AUTO; a SID or a GUID not in its form; an empty
 * value, a sAMAccountName empty after its domain) whatever cap is, or
 * ERR_TOOBIG (cap counts the NUL). On an error buf holds "" (when
 * cap > 0), never a filter cut short. */
int ldapfilter_build(enum user_kind kind, struct str user, int exclude_disabled, char *buf,
                     size_t cap);

#endif
