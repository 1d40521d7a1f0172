/* oneDNN's C API, included as a system header: its headers are not -Wpedantic clean. */
#ifndef BX_INFER_DNNL_INC_H
#define BX_INFER_DNNL_INC_H

#pragma GCC system_header

#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>

#endif
