// A port wider than 64 bits, for the test of cocotb's conversion of wide values.
// LANES lanes of LANE_BITS bits each: lanes_const holds lane i = i, and
// lanes_echo returns lanes_in one clock later.
`default_nettype none
module wide_lanes #(
    parameter integer LANES = 12,
    parameter integer LANE_BITS = 8
) (
    input  wire                       clk,
    input  wire [LANES*LANE_BITS-1:0] lanes_in,
    output reg  [LANES*LANE_BITS-1:0] lanes_echo,
    output wire [LANES*LANE_BITS-1:0] lanes_const
);
    genvar i;
    generate
        for (i = 0; i < LANES; i = i + 1) begin : g_lane
            assign lanes_const[i*LANE_BITS +: LANE_BITS] = i[LANE_BITS-1:0];
        end
    endgenerate

    always @(posedge clk) lanes_echo <= lanes_in;
endmodule
`default_nettype wire
