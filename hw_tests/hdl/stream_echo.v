// A stand-in with the ports of mon_top: ap_ctrl_hs on an AXI4-Lite slave named
// control, x_stream in, y_stream out. One start reads IN_BEATS input beats and
// writes them back followed by a status word (IN_BEATS in bits [15:0], bit 31
// set), TLAST on the status word. The testbench tests use it to check the
// stream drivers, backpressure, timeouts and the control protocol apart from
// the accelerator.
`default_nettype none
module stream_echo #(
    parameter integer IN_BEATS = 5
) (
    input  wire        ap_clk,
    input  wire        ap_rst_n,
    input  wire [3:0]  s_axi_control_AWADDR,
    input  wire        s_axi_control_AWVALID,
    output wire        s_axi_control_AWREADY,
    input  wire [31:0] s_axi_control_WDATA,
    input  wire [3:0]  s_axi_control_WSTRB,
    input  wire        s_axi_control_WVALID,
    output wire        s_axi_control_WREADY,
    output wire [1:0]  s_axi_control_BRESP,
    output reg         s_axi_control_BVALID,
    input  wire        s_axi_control_BREADY,
    input  wire [3:0]  s_axi_control_ARADDR,
    input  wire        s_axi_control_ARVALID,
    output wire        s_axi_control_ARREADY,
    output reg  [31:0] s_axi_control_RDATA,
    output wire [1:0]  s_axi_control_RRESP,
    output reg         s_axi_control_RVALID,
    input  wire        s_axi_control_RREADY,
    output wire        interrupt,
    input  wire [31:0] x_stream_TDATA,
    input  wire        x_stream_TVALID,
    output wire        x_stream_TREADY,
    input  wire [3:0]  x_stream_TKEEP,
    input  wire [3:0]  x_stream_TSTRB,
    input  wire        x_stream_TLAST,
    output wire [31:0] y_stream_TDATA,
    output wire        y_stream_TVALID,
    input  wire        y_stream_TREADY,
    output wire [3:0]  y_stream_TKEEP,
    output wire [3:0]  y_stream_TSTRB,
    output wire        y_stream_TLAST
);
    localparam [1:0] S_IDLE = 2'd0, S_READ = 2'd1, S_WRITE = 2'd2;

    reg [1:0]  state;
    reg [31:0] buffer [0:IN_BEATS-1];
    reg [15:0] index;
    reg        ap_start, auto_restart, done_flag, ready_flag, gie, ier_done, ier_ready, isr_done, isr_ready;
    wire       finish = state == S_WRITE && y_stream_TREADY && index == IN_BEATS;

    // Control registers, written with AW and W in the same cycle (cocotbext-axi's AxiLiteMaster
    // presents both together; a write waits until both are valid).
    reg aw_done;
    wire write_fire = s_axi_control_AWVALID && s_axi_control_WVALID && !s_axi_control_BVALID;
    assign s_axi_control_AWREADY = write_fire;
    assign s_axi_control_WREADY = write_fire;
    assign s_axi_control_BRESP = 2'b00;
    assign s_axi_control_ARREADY = !s_axi_control_RVALID;
    assign s_axi_control_RRESP = 2'b00;
    assign interrupt = gie && ((ier_done && isr_done) || (ier_ready && isr_ready));

    always @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            s_axi_control_BVALID <= 1'b0;
            s_axi_control_RVALID <= 1'b0;
            s_axi_control_RDATA <= 32'd0;
            ap_start <= 1'b0;
            auto_restart <= 1'b0;
            done_flag <= 1'b0;
            ready_flag <= 1'b0;
            gie <= 1'b0;
            ier_done <= 1'b0;
            ier_ready <= 1'b0;
            isr_done <= 1'b0;
            isr_ready <= 1'b0;
        end else begin
            if (s_axi_control_BVALID && s_axi_control_BREADY) s_axi_control_BVALID <= 1'b0;
            if (s_axi_control_RVALID && s_axi_control_RREADY) s_axi_control_RVALID <= 1'b0;

            if (finish) begin
                done_flag <= 1'b1;
                ready_flag <= 1'b1;
                isr_done <= isr_done | ier_done;
                isr_ready <= isr_ready | ier_ready;
                if (!auto_restart) ap_start <= 1'b0;
            end

            if (write_fire) begin
                s_axi_control_BVALID <= 1'b1;
                case (s_axi_control_AWADDR)
                    4'h0: begin
                        if (s_axi_control_WDATA[0]) ap_start <= 1'b1;
                        auto_restart <= s_axi_control_WDATA[7];
                    end
                    4'h4: gie <= s_axi_control_WDATA[0];
                    4'h8: begin
                        ier_done <= s_axi_control_WDATA[0];
                        ier_ready <= s_axi_control_WDATA[1];
                    end
                    4'hC: begin
                        isr_done <= isr_done ^ s_axi_control_WDATA[0];
                        isr_ready <= isr_ready ^ s_axi_control_WDATA[1];
                    end
                    default: ;
                endcase
            end

            if (s_axi_control_ARVALID && !s_axi_control_RVALID) begin
                s_axi_control_RVALID <= 1'b1;
                case (s_axi_control_ARADDR)
                    4'h0: begin
                        s_axi_control_RDATA <= {24'd0, auto_restart, 3'd0, ready_flag, state == S_IDLE, done_flag, ap_start};
                        // Clear on read, unless the same cycle sets them again.
                        if (!finish) begin
                            done_flag <= 1'b0;
                            ready_flag <= 1'b0;
                        end
                    end
                    4'h4: s_axi_control_RDATA <= {31'd0, gie};
                    4'h8: s_axi_control_RDATA <= {30'd0, ier_ready, ier_done};
                    4'hC: s_axi_control_RDATA <= {30'd0, isr_ready, isr_done};
                    default: s_axi_control_RDATA <= 32'd0;
                endcase
            end
        end
    end

    // The echo core.
    assign x_stream_TREADY = state == S_READ;
    assign y_stream_TVALID = state == S_WRITE;
    assign y_stream_TDATA = index == IN_BEATS ? {1'b1, 15'd0, IN_BEATS[15:0]} : buffer[index];
    assign y_stream_TKEEP = 4'hF;
    assign y_stream_TSTRB = 4'hF;
    assign y_stream_TLAST = index == IN_BEATS;

    always @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            state <= S_IDLE;
            index <= 16'd0;
        end else begin
            case (state)
                S_IDLE: if (ap_start) begin
                    state <= S_READ;
                    index <= 16'd0;
                end
                S_READ: if (x_stream_TVALID) begin
                    buffer[index] <= x_stream_TDATA;
                    if (index == IN_BEATS - 1) begin
                        state <= S_WRITE;
                        index <= 16'd0;
                    end else begin
                        index <= index + 16'd1;
                    end
                end
                S_WRITE: if (y_stream_TREADY) begin
                    if (index == IN_BEATS) begin
                        // Back to back when auto_restart keeps ap_start set.
                        state <= (ap_start && auto_restart) ? S_READ : S_IDLE;
                        index <= 16'd0;
                    end else begin
                        index <= index + 16'd1;
                    end
                end
                default: state <= S_IDLE;
            endcase
        end
    end

    // Unused inputs: TKEEP, TSTRB and TLAST of x_stream, WSTRB.
    wire unused = &{1'b0, x_stream_TKEEP, x_stream_TSTRB, x_stream_TLAST, s_axi_control_WSTRB, aw_done};
endmodule
`default_nettype wire
