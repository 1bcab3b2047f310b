`default_nettype none

// MON inference core: reads one input from x_stream, computes the injection,
// iterates forward-backward (FB) or Peaceman-Rachford (PR) until the stopping
// rule fires, computes the logits and writes k + 1 words to y_stream.
// The integer arithmetic is the mon2hls datapath contract (docs/datapath.md).
//
// Matrix-vector products run on C = min(PARALLEL, N) column lanes times
// R = min(max(1, floor(PARALLEL / N)), max(N, K)) rows: each cycle one tile
// of R x C weight codes is read from the weight ROM and multiplied with C
// operand slots of a rotating operand register. The pipeline is
//   issue (ROM address) -> products -> accumulate -> x multiplier -> round,
//   add bias, saturate, write
// so a product of T tiles takes T + 4 cycles. The injection, the operator
// and the output layer share the lanes and the ROM (three address segments).
//
// Control is ap_ctrl_hs. With the streams never stalling, one inference of
// I iterations takes, from the cycle an idle core sees ap_start to the cycle
// of the last output beat (both counted):
//   1 + XB + (T_U + 4) + I * (T_OP + 5) + (T_O + 4) + (K + 1)
// with T_U = ceil(N/R) ceil(XB E / C), T_OP = ceil(N/R) ceil(N/C),
// T_O = ceil(K/R) ceil(N/C).
module mon_core #(
    parameter integer N = 4,            // hidden units n
    parameter integer D = 4,            // input features d
    parameter integer K = 2,            // classes k
    parameter integer WX = 8,           // total bits of an input code
    parameter integer X_SIGNED = 0,     // 1 when input codes are two's complement
    parameter integer E = 4,            // input codes per 32-bit beat, floor(32 / WX)
    parameter integer XB = 1,           // input beats per inference, ceil(D / E)
    parameter integer WS = 16,          // total bits of the state format
    parameter integer WW = 6,           // weight bits B
    parameter integer ACCW = 24,        // accumulator bits (widest of the three products)
    parameter integer METHOD = 0,       // splitting method: 0 forward-backward, 1 Peaceman-Rachford
    parameter integer SHIFT_U = 16,     // requantization shift of the injection
    parameter integer SHIFT_OP = 16,    // requantization shift of the iteration operator
    parameter integer SHIFT_O = 16,     // requantization shift of the output layer
    parameter integer TOL = 0,          // tolerance in state LSBs: stop when max |change| <= TOL
    parameter integer MAX_ITER = 100,   // iteration limit, 1 .. 65535
    parameter integer PARALLEL = 1,     // multipliers working at once, P
    parameter WEIGHTS_FILE = "weights.mem",  // R*C*WW-bit tiles: injection, operator, output
    parameter MULT_FILE = "mult.mem",        // 16-bit row multipliers, padded to whole row groups
    parameter BIAS_FILE = "bias.mem"         // 32-bit biases: state rows, then logit rows
) (
    input  wire        clk,
    input  wire        rst_n,
    input  wire        ap_start,
    output wire        ap_done,
    output wire        ap_idle,
    output wire        ap_ready,
    input  wire [31:0] x_tdata,
    input  wire        x_tvalid,
    output wire        x_tready,
    output wire [31:0] y_tdata,
    output wire        y_tvalid,
    input  wire        y_tready,
    output wire        y_tlast
);

    // ------------------------------------------------------------------
    // Derived sizes
    // ------------------------------------------------------------------
    // Sizes clamped to 1 so that an illegal value reaches the checks below
    // instead of failing first on a division by zero.
    localparam integer P1 = (PARALLEL < 1) ? 1 : PARALLEL;
    localparam integer N1 = (N < 1) ? 1 : N;
    localparam integer K1 = (K < 1) ? 1 : K;
    localparam integer XE1 = (XB * E < 1) ? 1 : XB * E;
    localparam integer WX1 = (WX < 1) ? 1 : WX;
    localparam integer E1 = (E < 1) ? 1 : E;
    localparam integer C = (P1 < N1) ? P1 : N1;
    localparam integer R_WANT = (P1 / N1 > 1) ? P1 / N1 : 1;
    localparam integer R_CAP = (N1 > K1) ? N1 : K1;
    localparam integer R = (R_WANT < R_CAP) ? R_WANT : R_CAP;
    localparam integer CB_U = (XE1 + C - 1) / C;      // column blocks of the injection
    localparam integer CB_N = (N + C - 1) / C;        // column blocks of the operator and output layer
    localparam integer RG_N = (N + R - 1) / R;        // row groups of n rows
    localparam integer RG_K = (K + R - 1) / R;        // row groups of k rows
    localparam integer T_U = RG_N * CB_U;
    localparam integer T_OP = RG_N * CB_N;
    localparam integer T_O = RG_K * CB_N;
    localparam integer DEPTH = T_U + T_OP + T_O;
    localparam integer LX = CB_U * C;                 // input slots; codes sit at LX - XB*E onwards
    localparam integer LV = CB_N * C;                 // state operand slots
    localparam integer NR = RG_N * R;                 // n rows padded to whole row groups
    localparam integer KR = RG_K * R;
    localparam integer WXE = (X_SIGNED != 0) ? WX : WX + 1;
    localparam integer WO = (WXE > WS) ? WXE : WS;    // lane operand bits
    localparam integer PW = WW + WO;                  // lane product bits
    localparam integer AW = (ACCW > PW) ? ACCW : PW + 1;
    localparam integer MW = AW + 17;                  // accumulator times a 16-bit unsigned multiplier
    localparam integer SHIFT_MIN_A = (SHIFT_U < SHIFT_OP) ? SHIFT_U : SHIFT_OP;
    localparam integer SHIFT_MIN = (SHIFT_MIN_A < SHIFT_O) ? SHIFT_MIN_A : SHIFT_O;
    localparam integer LEFT = (SHIFT_MIN < 0) ? -SHIFT_MIN : 0;
    localparam integer RW = (MW + 1 + LEFT > 34) ? MW + 1 + LEFT : 34;  // rounded result bits
    localparam integer T_MAX_A = (T_U > T_OP) ? T_U : T_OP;
    localparam integer T_MAX = (T_MAX_A > T_O) ? T_MAX_A : T_O;
    localparam integer CW = $clog2(T_MAX + 5) + 1;    // phase cycle counter bits
    localparam integer CB_MAX = (CB_U > CB_N) ? CB_U : CB_N;
    localparam integer CBW = $clog2(CB_MAX + 1);
    localparam integer RG_MAX = (RG_N > RG_K) ? RG_N : RG_K;
    localparam integer RGW = $clog2(RG_MAX + 1);
    localparam integer ROMAW = (DEPTH > 1) ? $clog2(DEPTH) : 1;
    localparam integer MULT_DEPTH = 2 * NR + KR;
    localparam integer MAW = $clog2(MULT_DEPTH);   // MULT_DEPTH >= 3
    localparam integer BIAS_DEPTH = NR + KR;
    localparam integer BAW = $clog2(BIAS_DEPTH);   // BIAS_DEPTH >= 2
    localparam integer XBW = $clog2(XB + 1);
    localparam integer OW = $clog2(K + 2);
    localparam integer DRAIN = 4;                     // pipeline cycles after the last tile issue

    // ------------------------------------------------------------------
    // Elaboration-time checks: an illegal combination instantiates a module
    // that does not exist, whose name states the rule.
    // ------------------------------------------------------------------
    generate
        if (N < 1 || D < 1 || K < 1) begin : g_bad_sizes
            mon_error_sizes_must_be_at_least_1 u_error();
        end
        if (PARALLEL < 1) begin : g_bad_parallel
            mon_error_parallel_must_be_at_least_1 u_error();
        end
        if (WX < 1 || WX > 32 || E != 32 / WX1 || XB != (D + E1 - 1) / E1) begin : g_bad_input
            mon_error_input_width_beats_inconsistent u_error();
        end
        if (WS < 2 || WS > 32) begin : g_bad_state
            mon_error_state_width_must_be_2_to_32 u_error();
        end
        if (WW < 2 || WW > 32) begin : g_bad_weight
            mon_error_weight_bits_must_be_2_to_32 u_error();
        end
        if (METHOD != 0 && METHOD != 1) begin : g_bad_method
            mon_error_method_must_be_0_fb_or_1_pr u_error();
        end
        if (MAX_ITER < 1 || MAX_ITER > 65535) begin : g_bad_iterations
            mon_error_max_iter_must_be_1_to_65535 u_error();
        end
        if (TOL < 0) begin : g_bad_tolerance
            mon_error_tolerance_must_not_be_negative u_error();
        end
        if (ACCW < 2 || ACCW > 64) begin : g_bad_accumulator
            mon_error_accumulator_bits_must_be_2_to_64 u_error();
        end
        if (X_SIGNED != 0 && X_SIGNED != 1) begin : g_bad_signed
            mon_error_x_signed_must_be_0_or_1 u_error();
        end
    endgenerate

    // ------------------------------------------------------------------
    // Control state
    // ------------------------------------------------------------------
    localparam [2:0] S_IDLE = 3'd0;
    localparam [2:0] S_LOAD = 3'd1;
    localparam [2:0] S_MV = 3'd2;    // a matrix-vector product, selected by phase
    localparam [2:0] S_UPD = 3'd3;   // elementwise update and stopping rule
    localparam [2:0] S_OUT = 3'd4;
    localparam [1:0] PH_INJ = 2'd0;
    localparam [1:0] PH_OP = 2'd1;
    localparam [1:0] PH_LOG = 2'd2;

    // Sized copies of the integer sizes; each fits its width by construction.
    localparam integer CB_U_M1 = CB_U - 1;
    localparam integer CB_N_M1 = CB_N - 1;
    localparam integer T_U_OP = T_U + T_OP;
    localparam integer NR_2 = 2 * NR;
    localparam integer XB_M1 = XB - 1;
    localparam [CW-1:0] T_U_C = T_U[CW-1:0];
    localparam [CW-1:0] T_OP_C = T_OP[CW-1:0];
    localparam [CW-1:0] T_O_C = T_O[CW-1:0];
    localparam [CW-1:0] DRAIN_C = DRAIN[CW-1:0];
    localparam [CBW-1:0] CB_U_LAST = CB_U_M1[CBW-1:0];
    localparam [CBW-1:0] CB_N_LAST = CB_N_M1[CBW-1:0];
    localparam [ROMAW-1:0] BASE_OP = T_U[ROMAW-1:0];
    localparam [ROMAW-1:0] BASE_O = T_U_OP[ROMAW-1:0];
    localparam [MAW-1:0] MULT_BASE_OP = NR[MAW-1:0];
    localparam [MAW-1:0] MULT_BASE_O = NR_2[MAW-1:0];
    localparam [BAW-1:0] BIAS_BASE_O = NR[BAW-1:0];
    localparam [XBW-1:0] XB_LAST = XB_M1[XBW-1:0];
    localparam [OW-1:0] OUT_LAST = K[OW-1:0];
    localparam [15:0] MAX_ITER_C = MAX_ITER[15:0];

    reg [2:0] state;
    reg [1:0] phase;
    reg [CW-1:0] cnt;
    reg [CBW-1:0] cb;
    reg [XBW-1:0] beat;
    reg [OW-1:0] out_idx;
    reg [15:0] iter;
    reg converged;

    wire [CW-1:0] tiles = (phase == PH_INJ) ? T_U_C : (phase == PH_OP) ? T_OP_C : T_O_C;
    wire [CBW-1:0] cb_last = (phase == PH_INJ) ? CB_U_LAST : CB_N_LAST;
    wire in_mv = (state == S_MV);
    wire issue = in_mv && (cnt < tiles);
    wire mv_end = in_mv && (cnt == tiles + DRAIN_C - 1'b1);
    wire mv_first = in_mv && (cnt == {CW{1'b0}});
    wire start = (state == S_IDLE) && ap_start;
    wire x_hs = (state == S_LOAD) && x_tvalid;
    wire y_hs = (state == S_OUT) && y_tready;
    wire last_out = y_hs && (out_idx == OUT_LAST);

    wire all_within_tol;                       // every |change| <= TOL in this update
    wire [15:0] iter_next = iter + 16'd1;
    wire stop = all_within_tol || (iter_next == MAX_ITER_C);

    always @(posedge clk) begin
        if (!rst_n) begin
            state <= S_IDLE;
            phase <= PH_INJ;
            cnt <= {CW{1'b0}};
            cb <= {CBW{1'b0}};
            beat <= {XBW{1'b0}};
            out_idx <= {OW{1'b0}};
            iter <= 16'd0;
            converged <= 1'b0;
        end else begin
            case (state)
                S_IDLE: if (ap_start) begin
                    state <= S_LOAD;
                    beat <= {XBW{1'b0}};
                    iter <= 16'd0;
                    converged <= 1'b0;
                end
                S_LOAD: if (x_tvalid) begin
                    beat <= beat + 1'b1;
                    if (beat == XB_LAST) begin
                        state <= S_MV;
                        phase <= PH_INJ;
                        cnt <= {CW{1'b0}};
                        cb <= {CBW{1'b0}};
                    end
                end
                S_MV: begin
                    cnt <= cnt + 1'b1;
                    if (issue) cb <= (cb == cb_last) ? {CBW{1'b0}} : cb + 1'b1;
                    if (mv_end) begin
                        cnt <= {CW{1'b0}};
                        cb <= {CBW{1'b0}};
                        case (phase)
                            PH_INJ: phase <= PH_OP;
                            PH_OP: state <= S_UPD;
                            default: begin
                                state <= S_OUT;
                                out_idx <= {OW{1'b0}};
                            end
                        endcase
                    end
                end
                S_UPD: begin
                    iter <= iter_next;
                    converged <= all_within_tol;
                    state <= S_MV;
                    phase <= stop ? PH_LOG : PH_OP;
                end
                S_OUT: if (y_tready) begin
                    out_idx <= out_idx + 1'b1;
                    if (out_idx == OUT_LAST) state <= S_IDLE;
                end
                default: state <= S_IDLE;
            endcase
        end
    end

    assign ap_idle = (state == S_IDLE);
    assign ap_done = last_out;
    assign ap_ready = last_out;
    assign x_tready = (state == S_LOAD);

    // ------------------------------------------------------------------
    // Pipeline tags: stage A (ROM data ready), B (products), C (row sums
    // complete), D (scaled sums ready to round and write)
    // ------------------------------------------------------------------
    reg a_valid, a_first, a_last;
    reg b_valid, b_first, b_last;
    reg c_valid;
    reg d_valid;
    reg [RGW-1:0] c_group;   // row group leaving stage C
    reg [RGW-1:0] d_group;   // row group written at stage D

    always @(posedge clk) begin
        if (!rst_n) begin
            a_valid <= 1'b0;
            b_valid <= 1'b0;
            c_valid <= 1'b0;
            d_valid <= 1'b0;
        end else begin
            a_valid <= issue;
            b_valid <= a_valid;
            c_valid <= b_valid && b_last;
            d_valid <= c_valid;
        end
        a_first <= (cb == {CBW{1'b0}});
        a_last <= (cb == cb_last);
        b_first <= a_first;
        b_last <= a_last;
    end

    always @(posedge clk) begin
        if (!rst_n || mv_first) begin
            c_group <= {RGW{1'b0}};
            d_group <= {RGW{1'b0}};
        end else begin
            if (c_valid) c_group <= c_group + 1'b1;
            if (d_valid) d_group <= d_group + 1'b1;
        end
    end

    // ------------------------------------------------------------------
    // Weight ROM: one R x C tile per word, code (r, c) at bits
    // [(r*C + c)*WW +: WW]
    // ------------------------------------------------------------------
    reg [R*C*WW-1:0] weight_rom [0:DEPTH-1];
    reg [R*C*WW-1:0] weights_q;
    wire [ROMAW-1:0] tile_base = (phase == PH_INJ) ? {ROMAW{1'b0}} : (phase == PH_OP) ? BASE_OP : BASE_O;
    wire [ROMAW-1:0] cnt_addr;
    wire [ROMAW-1:0] rom_addr = issue ? tile_base + cnt_addr : {ROMAW{1'b0}};

    generate
        if (ROMAW > CW) begin : g_addr_wide
            assign cnt_addr = {{(ROMAW-CW){1'b0}}, cnt};
        end else begin : g_addr_narrow
            assign cnt_addr = cnt[ROMAW-1:0];
            if (CW > ROMAW) begin : g_unused
                wire unused_cnt = &{1'b0, cnt[CW-1:ROMAW]};
            end
        end
    endgenerate

    initial $readmemh(WEIGHTS_FILE, weight_rom);

    always @(posedge clk) begin
        weights_q <= weight_rom[rom_addr];
    end

    // ------------------------------------------------------------------
    // Operand registers. The input slots shift in E codes per beat and
    // rotate by C slots per injection tile; the state slots load z (FB) or
    // w (PR) at the start of a product and rotate by C slots per tile.
    // Slot block 0 (slots 0 .. C-1) always feeds the lanes.
    // ------------------------------------------------------------------
    reg [LX*WX-1:0] x_slots;
    reg [LV*WS-1:0] v_slots;
    wire [LX*WX-1:0] x_shifted;
    wire [LX*WX-1:0] x_rotated;
    wire [LV*WS-1:0] v_rotated;
    wire [N*WS-1:0] operand_src;   // z (FB) or w (PR) for the operator
    wire [N*WS-1:0] logit_src;     // z for the output layer
    wire [LV*WS-1:0] operand_load;
    wire [LV*WS-1:0] logit_load;

    generate
        if (LX > E) begin : g_x_shift
            assign x_shifted = {x_tdata[E*WX-1:0], x_slots[LX*WX-1:E*WX]};
        end else begin : g_x_fill
            assign x_shifted = x_tdata[E*WX-1:0];
        end
        if (LX > C) begin : g_x_rotate
            assign x_rotated = {x_slots[C*WX-1:0], x_slots[LX*WX-1:C*WX]};
        end else begin : g_x_still
            assign x_rotated = x_slots;
        end
        if (LV > C) begin : g_v_rotate
            assign v_rotated = {v_slots[C*WS-1:0], v_slots[LV*WS-1:C*WS]};
        end else begin : g_v_still
            assign v_rotated = v_slots;
        end
        if (LV > N) begin : g_v_pad
            assign operand_load = {{((LV-N)*WS){1'b0}}, operand_src};
            assign logit_load = {{((LV-N)*WS){1'b0}}, logit_src};
        end else begin : g_v_full
            assign operand_load = operand_src;
            assign logit_load = logit_src;
        end
        if (E * WX < 32) begin : g_x_unused
            wire unused_x = &{1'b0, x_tdata[31:E*WX]};
        end
    endgenerate

    always @(posedge clk) begin
        if (!rst_n) begin
            // Padding slots meet zero weights; clearing them keeps simulation free of X.
            x_slots <= {(LX*WX){1'b0}};
        end else if (x_hs) begin
            x_slots <= x_shifted;
        end else if (a_valid && phase == PH_INJ) begin
            x_slots <= x_rotated;
        end
    end

    always @(posedge clk) begin
        if (mv_first && phase == PH_OP)
            v_slots <= operand_load;
        else if (mv_first && phase == PH_LOG)
            v_slots <= logit_load;
        else if (a_valid && phase != PH_INJ)
            v_slots <= v_rotated;
    end

    // ------------------------------------------------------------------
    // Lanes: R x C products per cycle, row sums, accumulation
    // ------------------------------------------------------------------
    wire [C*WO-1:0] lane_operand;
    reg [R*C*PW-1:0] products;
    reg [R*AW-1:0] acc;

    genvar gc, gr;
    generate
        for (gc = 0; gc < C; gc = gc + 1) begin : g_lane
            wire [WXE-1:0] x_code;
            wire [WO-1:0] x_wide;
            wire [WO-1:0] v_wide;
            if (X_SIGNED != 0) begin : g_signed
                assign x_code = x_slots[gc*WX +: WX];
            end else begin : g_unsigned
                assign x_code = {1'b0, x_slots[gc*WX +: WX]};
            end
            mon_saturate #(.IN_W(WXE), .OUT_W(WO)) u_x_extend (.in_value(x_code), .out_value(x_wide));
            mon_saturate #(.IN_W(WS), .OUT_W(WO)) u_v_extend (
                .in_value(v_slots[gc*WS +: WS]), .out_value(v_wide)
            );
            assign lane_operand[gc*WO +: WO] = (phase == PH_INJ) ? x_wide : v_wide;
        end

        for (gr = 0; gr < R; gr = gr + 1) begin : g_row
            for (gc = 0; gc < C; gc = gc + 1) begin : g_mul
                wire signed [WW-1:0] weight = weights_q[(gr*C + gc)*WW +: WW];
                wire signed [WO-1:0] operand = lane_operand[gc*WO +: WO];
                wire signed [PW-1:0] weight_wide = {{WO{weight[WW-1]}}, weight};
                wire signed [PW-1:0] operand_wide = {{WW{operand[WO-1]}}, operand};
                wire signed [PW-1:0] product = weight_wide * operand_wide;
                always @(posedge clk) begin
                    products[(gr*C + gc)*PW +: PW] <= product;
                end
            end

            // Sum of the C products of this row, sign-extended to the accumulator.
            // NOTE: the C additions form one combinational path; no timing analysis
            // has checked it at large C, where a pipelined adder tree may be needed.
            reg [AW-1:0] row_sum;
            integer lane;
            always @* begin
                row_sum = {AW{1'b0}};
                for (lane = 0; lane < C; lane = lane + 1) begin
                    row_sum = row_sum + {{(AW-PW){products[(gr*C + lane)*PW + PW - 1]}},
                                         products[(gr*C + lane)*PW +: PW]};
                end
            end

            always @(posedge clk) begin
                if (b_valid) acc[gr*AW +: AW] <= (b_first ? {AW{1'b0}} : acc[gr*AW +: AW]) + row_sum;
            end
        end
    endgenerate

    // ------------------------------------------------------------------
    // Requantization: x mult (stage C), round, add bias, saturate (stage D)
    // ------------------------------------------------------------------
    reg [15:0] mult_rom [0:MULT_DEPTH-1];
    reg [31:0] bias_rom [0:BIAS_DEPTH-1];
    initial $readmemh(MULT_FILE, mult_rom);
    initial $readmemh(BIAS_FILE, bias_rom);

    wire [MAW-1:0] mult_base = (phase == PH_INJ) ? {MAW{1'b0}} : (phase == PH_OP) ? MULT_BASE_OP : MULT_BASE_O;
    wire [BAW-1:0] bias_base = (phase == PH_LOG) ? BIAS_BASE_O : {BAW{1'b0}};
    reg [R*MW-1:0] scaled;
    wire [R*WS-1:0] q_state;    // rounded row results in the state format
    wire [R*(WS+2)-1:0] q_op;   // operator results: RND saturated to WS + 2 bits (FB) or to WS (PR)
    wire [R*32-1:0] q_logit;    // rounded row results in the logit format

    generate
        for (gr = 0; gr < R; gr = gr + 1) begin : g_requant
            localparam integer ROW = gr;
            localparam [MAW-1:0] ROW_M = ROW[MAW-1:0];
            localparam [BAW-1:0] ROW_B = ROW[BAW-1:0];
            localparam [MAW-1:0] R_M = R[MAW-1:0];
            localparam [BAW-1:0] R_B = R[BAW-1:0];
            wire [MAW-1:0] mult_addr = mult_base + c_group * R_M + ROW_M;
            wire [BAW-1:0] bias_addr = bias_base + d_group * R_B + ROW_B;
            wire [15:0] mult = mult_rom[mult_addr];
            wire [31:0] bias = bias_rom[bias_addr];
            wire signed [MW-1:0] acc_wide = {{17{acc[gr*AW + AW - 1]}}, acc[gr*AW +: AW]};
            wire signed [MW-1:0] mult_wide = {{(MW-16){1'b0}}, mult};

            always @(posedge clk) begin
                if (c_valid) scaled[gr*MW +: MW] <= acc_wide * mult_wide;
            end

            wire [RW-1:0] rounded_u, rounded_op, rounded_o;
            mon_round #(.IN_W(MW), .OUT_W(RW), .SHIFT(SHIFT_U)) u_round_u (
                .in_value(scaled[gr*MW +: MW]), .out_value(rounded_u)
            );
            mon_round #(.IN_W(MW), .OUT_W(RW), .SHIFT(SHIFT_OP)) u_round_op (
                .in_value(scaled[gr*MW +: MW]), .out_value(rounded_op)
            );
            mon_round #(.IN_W(MW), .OUT_W(RW), .SHIFT(SHIFT_O)) u_round_o (
                .in_value(scaled[gr*MW +: MW]), .out_value(rounded_o)
            );
            wire [RW-1:0] rounded = (phase == PH_INJ) ? rounded_u : (phase == PH_OP) ? rounded_op : rounded_o;
            // The operator has no bias; the injection and output layer add theirs before saturating.
            wire [RW:0] biased = {rounded[RW-1], rounded}
                               + ((phase == PH_OP) ? {(RW+1){1'b0}} : {{(RW-31){bias[31]}}, bias});
            mon_saturate #(.IN_W(RW + 1), .OUT_W(WS)) u_sat_state (
                .in_value(biased), .out_value(q_state[gr*WS +: WS])
            );
            mon_saturate #(.IN_W(RW + 1), .OUT_W(32)) u_sat_logit (
                .in_value(biased), .out_value(q_logit[gr*32 +: 32])
            );
            if (METHOD == 0) begin : g_fb_result
                // FB saturates only z + RND(...) + d. Clamping RND(...) to WS + 2 bits first gives
                // the same result: beyond that range the sum saturates either way, as |z + d| < 2^WS.
                mon_saturate #(.IN_W(RW + 1), .OUT_W(WS + 2)) u_sat_op (
                    .in_value(biased), .out_value(q_op[gr*(WS+2) +: WS+2])
                );
            end else begin : g_pr_result
                assign q_op[gr*(WS+2) +: WS+2] = {{2{q_state[gr*WS + WS - 1]}}, q_state[gr*WS +: WS]};
            end
        end
    endgenerate

    // ------------------------------------------------------------------
    // Per-element registers and the elementwise phase
    // ------------------------------------------------------------------
    // |change| <= 2^WS - 1 always, so a larger tolerance acts like 2^WS.
    localparam integer TOL_CLAMPED = (WS < 30 && TOL > (1 << WS)) ? (1 << WS) : TOL;
    wire signed [WS+1:0] tol_limit;
    generate
        if (WS + 2 <= 32) begin : g_tol_narrow
            assign tol_limit = TOL_CLAMPED[WS+1:0];
        end else begin : g_tol_wide
            assign tol_limit = {{(WS-30){1'b0}}, TOL_CLAMPED[31:0]};
        end
    endgenerate
    wire [N-1:0] within_tol;

    genvar gi;
    generate
        for (gi = 0; gi < N; gi = gi + 1) begin : g_elem
            localparam integer GROUP_INDEX = gi / R;
            localparam [RGW-1:0] GROUP = GROUP_INDEX[RGW-1:0];
            localparam integer LANE = gi % R;
            wire write = d_valid && (d_group == GROUP);
            reg [WS-1:0] inj;      // d_i, the injection
            reg [WS-1:0] state_q;  // z_i (FB) or u_i (PR)
            reg [WS+1:0] result;   // RND(acc_i * mult_i) (FB) or zh_i (PR) of the last product
            wire [WS-1:0] next_state;
            wire [WS:0] change;

            always @(posedge clk) begin
                if (write && phase == PH_INJ) inj <= q_state[LANE*WS +: WS];
                if (write && phase == PH_OP) result <= q_op[LANE*(WS+2) +: WS+2];
                if (start) state_q <= {WS{1'b0}};
                else if (state == S_UPD) state_q <= next_state;
            end

            if (METHOD == 0) begin : g_fb
                // t = SAT(z + RND(acc * mult) + d), the sum exact in WS + 4 bits; z' = max(t, 0)
                wire [WS+3:0] t_full = {{4{state_q[WS-1]}}, state_q} + {{2{result[WS+1]}}, result}
                                     + {{4{inj[WS-1]}}, inj};
                wire [WS-1:0] t;
                mon_saturate #(.IN_W(WS + 4), .OUT_W(WS)) u_sat_t (.in_value(t_full), .out_value(t));
                assign next_state = t[WS-1] ? {WS{1'b0}} : t;
                assign operand_src[gi*WS +: WS] = state_q;
                assign logit_src[gi*WS +: WS] = state_q;
            end else begin : g_pr
                // h = SAT(2z - u) and w = SAT(h + d) at the start of an iteration;
                // u' = SAT(2 zh - h) and z = max(u, 0) at its end.
                reg [WS-1:0] h_q;
                wire [WS-1:0] z = state_q[WS-1] ? {WS{1'b0}} : state_q;
                wire [WS+1:0] h_full = {z[WS-1], z, 1'b0} - {{2{state_q[WS-1]}}, state_q};
                wire [WS-1:0] h;
                mon_saturate #(.IN_W(WS + 2), .OUT_W(WS)) u_sat_h (.in_value(h_full), .out_value(h));
                wire [WS:0] w_full = {h[WS-1], h} + {inj[WS-1], inj};
                wire [WS-1:0] w;
                mon_saturate #(.IN_W(WS + 1), .OUT_W(WS)) u_sat_w (.in_value(w_full), .out_value(w));
                always @(posedge clk) begin
                    if (mv_first && phase == PH_OP) h_q <= h;
                end
                wire [WS-1:0] z_half = result[WS-1:0];
                wire unused_result = &{1'b0, result[WS+1:WS]};
                wire [WS+1:0] u_full = {z_half[WS-1], z_half, 1'b0} - {{2{h_q[WS-1]}}, h_q};
                mon_saturate #(.IN_W(WS + 2), .OUT_W(WS)) u_sat_u (.in_value(u_full), .out_value(next_state));
                assign operand_src[gi*WS +: WS] = w;
                assign logit_src[gi*WS +: WS] = z;
            end

            // Change of the state register in this update: z' - z (FB) or u' - u (PR).
            assign change = {next_state[WS-1], next_state} - {state_q[WS-1], state_q};
            wire signed [WS+1:0] change_wide = {change[WS], change};
            assign within_tol[gi] = (change_wide <= tol_limit) && (change_wide >= -tol_limit);
        end
    endgenerate

    assign all_within_tol = &within_tol;

    // ------------------------------------------------------------------
    // Logits and the output stream
    // ------------------------------------------------------------------
    wire [(K+1)*32-1:0] out_words;
    assign out_words[K*32 +: 32] = {converged, 15'd0, iter};

    generate
        for (gi = 0; gi < K; gi = gi + 1) begin : g_logit
            localparam integer GROUP_INDEX = gi / R;
            localparam [RGW-1:0] GROUP = GROUP_INDEX[RGW-1:0];
            localparam integer LANE = gi % R;
            reg [31:0] logit;
            always @(posedge clk) begin
                if (d_valid && phase == PH_LOG && d_group == GROUP) logit <= q_logit[LANE*32 +: 32];
            end
            assign out_words[gi*32 +: 32] = logit;
        end
    endgenerate

    assign y_tdata = out_words[out_idx*32 +: 32];

    // Lanes past the last row (R > n or R > k) compute results that nothing reads.
    wire unused_lanes = &{1'b0, q_state, q_logit, q_op};
    assign y_tvalid = (state == S_OUT);
    assign y_tlast = (state == S_OUT) && (out_idx == OUT_LAST);

endmodule

`default_nettype wire
