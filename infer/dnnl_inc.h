/*
 * oneDNN's C API, included as a system header: its headers are not
 * -Wpedantic clean; and what infer's two oneDNN users share.
 */
#ifndef BX_INFER_DNNL_INC_H
#define BX_INFER_DNNL_INC_H

#pragma GCC system_header

#include <stddef.h>

/* A oneDNN call whose failure goes to `out` with its status in st. */
#define CHK(call)                                    \
	do {                                         \
		if ((st = (call)) != dnnl_success) { \
			goto out;                    \
		}                                    \
	} while (0)

#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>

/*
 * Grow a scratchpad (*buf, 64-byte aligned, *cap bytes; bx_free'd) to what
 * the primitive pd needs; a failed allocation leaves it empty. embed_dnnl.c.
 */
dnnl_status_t bx_dnnl_scratch_grow(void **buf, size_t *cap, const_dnnl_primitive_desc_t pd);
/*
 * A weight matrix W[k][n] held as [n][k] rows of type dt at plain (read as
 * tag ba) reordered into `to`, laid out as to_md (the layout a primitive
 * chose). embed_dnnl.c.
 */
dnnl_status_t bx_dnnl_pack_ba(dnnl_engine_t eng, dnnl_stream_t strm, const void *plain,
                              dnnl_data_type_t dt, size_t k, size_t n,
                              const dnnl_memory_desc_t *to_md, void *to);

#endif
