// Constant signed outputs of odd widths, for the test that reads signed values back from the DUT.
`default_nettype none
module signed_ports (
    input  wire               clk,
    output wire signed [8:0]  s9_minus_30,
    output wire signed [15:0] s16_minus_1,
    output wire signed [15:0] s16_min,
    output wire signed [16:0] s17_minus_1,
    output wire signed [16:0] s17_min,
    // Echo of a signed input, so a value written by the testbench is read back with its sign.
    input  wire signed [16:0] s17_in,
    output reg  signed [16:0] s17_echo
);
    assign s9_minus_30 = -9'sd30;
    assign s16_minus_1 = -16'sd1;
    assign s16_min = 16'sh8000;
    assign s17_minus_1 = -17'sd1;
    assign s17_min = 17'sh10000;

    always @(posedge clk) s17_echo <= s17_in;
endmodule
`default_nettype wire
