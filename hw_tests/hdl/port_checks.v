// One top for the port conversion tests, so that they share a Verilator build:
// the signed ports of signed_ports.v and the wide port of wide_lanes.v.
`default_nettype none
module port_checks #(
    parameter integer LANES = 12,
    parameter integer LANE_BITS = 8
) (
    input  wire                       clk,
    output wire signed [8:0]          s9_minus_30,
    output wire signed [15:0]         s16_minus_1,
    output wire signed [15:0]         s16_min,
    output wire signed [16:0]         s17_minus_1,
    output wire signed [16:0]         s17_min,
    input  wire signed [16:0]         s17_in,
    output wire signed [16:0]         s17_echo,
    input  wire [LANES*LANE_BITS-1:0] lanes_in,
    output wire [LANES*LANE_BITS-1:0] lanes_echo,
    output wire [LANES*LANE_BITS-1:0] lanes_const
);
    signed_ports u_signed (
        .clk(clk),
        .s9_minus_30(s9_minus_30),
        .s16_minus_1(s16_minus_1),
        .s16_min(s16_min),
        .s17_minus_1(s17_minus_1),
        .s17_min(s17_min),
        .s17_in(s17_in),
        .s17_echo(s17_echo)
    );

    wide_lanes #(.LANES(LANES), .LANE_BITS(LANE_BITS)) u_wide (
        .clk(clk),
        .lanes_in(lanes_in),
        .lanes_echo(lanes_echo),
        .lanes_const(lanes_const)
    );
endmodule
`default_nettype wire
