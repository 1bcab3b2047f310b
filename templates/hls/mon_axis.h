// The 32-bit AXI4-Stream beat of the accelerator's x_stream and y_stream.
//
// With Vitis HLS, ap_axi_sdata.h provides the packet type and synthesis maps
// its fields to TDATA, TKEEP, TSTRB and TLAST. The open-source ap_int headers
// (as shipped in the hls4ml wheel) have no ap_axi_sdata.h, so C simulation
// falls back to a plain struct with the same field names. Define
// MON_NO_AP_AXI_SDATA to force the fallback.
#ifndef MON_AXIS_H
#define MON_AXIS_H

#include "ap_int.h"

#if !defined(MON_NO_AP_AXI_SDATA) && defined(__has_include)
#if __has_include("ap_axi_sdata.h")
#include "ap_axi_sdata.h"
#define MON_HAVE_AP_AXI_SDATA 1
#endif
#endif

#ifdef MON_HAVE_AP_AXI_SDATA
// NOTE: zero-width TUSER, TID and TDEST need Vitis HLS 2021.1 or later; older
// releases reject ap_uint<0> in ap_axiu.
typedef ap_axiu<32, 0, 0, 0> axis_word;
#else
struct axis_word {
    ap_uint<32> data = 0;
    ap_uint<4> keep = 0;
    ap_uint<4> strb = 0;
    ap_uint<1> last = 0;
};
#endif

#endif  // MON_AXIS_H
