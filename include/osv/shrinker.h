/* SPDX-License-Identifier: MIT */
/*
 * OSv source compatibility.  An OSv program needs no header at all (OSv's
 * documentation has it declare the prototype itself); this one is for those
 * who prefer to include one.  Link with -lshrinker.
 *
 * The function is called when memory is tight with the bytes wanted (target)
 * and hard == false for preemptive freeing, true for severe pressure; it
 * returns the bytes it freed.  It runs on the library's reclaimer thread,
 * never concurrently with itself, with no library lock held.
 *
 * Returns an opaque handle, or NULL if the shrinker could not be registered
 * (name or func NULL, out of memory); a name longer than 63 bytes is cut.
 * OSv offers no way to unregister; neither does this shim.
 */
#ifndef OSV_SHRINKER_H
#define OSV_SHRINKER_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

void *osv_register_shrinker(const char *name,
			    size_t (*func)(size_t target, bool hard));

#ifdef __cplusplus
}
#endif

#endif /* OSV_SHRINKER_H */
