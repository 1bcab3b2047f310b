`default_nettype none

// Saturate a signed value into OUT_W bits (AP_SAT), or sign-extend it when
// OUT_W >= IN_W: min(max(in, -2^(OUT_W-1)), 2^(OUT_W-1) - 1).
module mon_saturate #(
    parameter integer IN_W = 9,   // total bits of the signed input
    parameter integer OUT_W = 8   // total bits of the signed result
) (
    input  wire [IN_W-1:0]  in_value,
    output wire [OUT_W-1:0] out_value
);

    generate
        if (IN_W > OUT_W) begin : g_narrow
            wire sign = in_value[IN_W-1];
            // The value fits when every bit above the result's sign bit equals the sign.
            wire fits = (in_value[IN_W-1:OUT_W-1] == {(IN_W-OUT_W+1){sign}});
            assign out_value = fits ? in_value[OUT_W-1:0] : {sign, {(OUT_W-1){~sign}}};
        end else if (IN_W == OUT_W) begin : g_same
            assign out_value = in_value;
        end else begin : g_widen
            assign out_value = {{(OUT_W-IN_W){in_value[IN_W-1]}}, in_value};
        end
    endgenerate

endmodule

`default_nettype wire
