#ifndef CHORUS_CJEMALLOC_SHIM_H
#define CHORUS_CJEMALLOC_SHIM_H
#include <stddef.h>
#include <jemalloc/jemalloc.h>

/// The version of the jemalloc that serves this process's malloc, or NULL when malloc is
/// another allocator's (jemalloc linked but not interposed). Also what keeps the library
/// linked under --as-needed: the agent's own code never calls malloc directly.
static inline const char *chorus_jemalloc_version(void) {
    const char *version = NULL;
    size_t size = sizeof(version);
    if (mallctl("version", &version, &size, NULL, 0) != 0) return NULL;
    return version;
}
#endif
