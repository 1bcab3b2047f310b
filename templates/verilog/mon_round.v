`default_nettype none

// Requantization shift with round half up (AP_RND) on a signed value:
// floor((a + 2^(SHIFT-1)) / 2^SHIFT) for SHIFT > 0, the exact a * 2^-SHIFT
// for SHIFT <= 0. The result is sign-extended to OUT_W bits, which must hold
// IN_W - SHIFT + 1 bits (the caller sizes it).
module mon_round #(
    parameter integer IN_W = 32,   // total bits of the signed input
    parameter integer OUT_W = 40,  // total bits of the signed result
    parameter integer SHIFT = 8    // right shift; a negative value shifts left
) (
    input  wire [IN_W-1:0]  in_value,
    output wire [OUT_W-1:0] out_value
);

    generate
        if (SHIFT >= IN_W) begin : g_zero
            // a + 2^(SHIFT-1) lies in [0, 2^SHIFT) for every IN_W-bit a, so the result is 0.
            assign out_value = {OUT_W{1'b0}};
            wire unused_in = &{1'b0, in_value};
        end else if (SHIFT > 0) begin : g_right
            localparam [IN_W:0] HALF = {{IN_W{1'b0}}, 1'b1} << (SHIFT - 1);
            wire [IN_W:0] biased = {in_value[IN_W-1], in_value} + HALF;
            wire [IN_W-SHIFT:0] shifted = biased[IN_W:SHIFT];
            mon_saturate #(.IN_W(IN_W - SHIFT + 1), .OUT_W(OUT_W)) u_extend (
                .in_value(shifted), .out_value(out_value)
            );
            wire unused_low = &{1'b0, biased[SHIFT-1:0]};
        end else if (SHIFT == 0) begin : g_none
            mon_saturate #(.IN_W(IN_W), .OUT_W(OUT_W)) u_extend (
                .in_value(in_value), .out_value(out_value)
            );
        end else begin : g_left
            wire [IN_W-SHIFT-1:0] shifted = {in_value, {(-SHIFT){1'b0}}};
            mon_saturate #(.IN_W(IN_W - SHIFT), .OUT_W(OUT_W)) u_extend (
                .in_value(shifted), .out_value(out_value)
            );
        end
    endgenerate

endmodule

`default_nettype wire
