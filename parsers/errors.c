#include "errors.h"

const char *err_name(int code)
{
    switch (code) {
    case ERR_OK:
        return "success";
    case ERR_AGAIN:
        return "need more input";
    case ERR_INVALID:
        return "malformed input";
    case ERR_TOOBIG:
        return "over the size limit";
    case ERR_LIMIT:
        return "too many items";
    case ERR_NOMEM:
        return "out of memory";
    case ERR_IO:
        return "system call failed";
    case ERR_CONFIG:
        return "configuration error";
    case ERR_BUSY:
        return "queue full";
    default:
        return "unknown error";
    }
}
