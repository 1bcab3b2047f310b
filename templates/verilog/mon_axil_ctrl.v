`default_nettype none

// AXI4-Lite slave with the ap_ctrl_hs register map that Vitis HLS generates
// for `s_axilite port=return bundle=control`:
//   0x00 bit 0 ap_start, bit 1 ap_done (clear on read), bit 2 ap_idle,
//        bit 3 ap_ready (clear on read), bit 7 auto_restart
//   0x04 bit 0 global interrupt enable
//   0x08 interrupt enable: bit 0 ap_done, bit 1 ap_ready
//   0x0C interrupt status, same bits; writing 1 toggles a bit
// One write and one read transaction are in flight at most; responses are
// always OKAY, and unmapped addresses read as zero and ignore writes.
module mon_axil_ctrl #(
    parameter integer ADDR_WIDTH = 4,   // C_S_AXI_CONTROL_ADDR_WIDTH
    parameter integer DATA_WIDTH = 32   // C_S_AXI_CONTROL_DATA_WIDTH
) (
    input  wire                      clk,
    input  wire                      rst_n,
    input  wire                      awvalid,
    output wire                      awready,
    input  wire [ADDR_WIDTH-1:0]     awaddr,
    input  wire                      wvalid,
    output wire                      wready,
    input  wire [DATA_WIDTH-1:0]     wdata,
    input  wire [DATA_WIDTH/8-1:0]   wstrb,
    input  wire                      arvalid,
    output wire                      arready,
    input  wire [ADDR_WIDTH-1:0]     araddr,
    output wire                      rvalid,
    input  wire                      rready,
    output wire [DATA_WIDTH-1:0]     rdata,
    output wire [1:0]                rresp,
    output wire                      bvalid,
    input  wire                      bready,
    output wire [1:0]                bresp,
    output wire                      interrupt,
    // Block-level handshake with the core.
    output wire                      ap_start,
    input  wire                      ap_done,
    input  wire                      ap_ready,
    input  wire                      ap_idle
);

    localparam [ADDR_WIDTH-1:0] ADDR_AP_CTRL = 4'h0;
    localparam [ADDR_WIDTH-1:0] ADDR_GIE = 4'h4;
    localparam [ADDR_WIDTH-1:0] ADDR_IER = 4'h8;
    localparam [ADDR_WIDTH-1:0] ADDR_ISR = 4'hC;

    localparam [1:0] WR_IDLE = 2'd0;
    localparam [1:0] WR_DATA = 2'd1;
    localparam [1:0] WR_RESP = 2'd2;
    localparam RD_IDLE = 1'b0;
    localparam RD_DATA = 1'b1;

    reg [1:0] wr_state;
    reg [ADDR_WIDTH-1:0] wr_addr;
    reg rd_state;
    reg [DATA_WIDTH-1:0] rd_data;

    reg int_ap_start;
    reg int_ap_done;
    reg int_ap_ready;
    reg int_auto_restart;
    reg int_gie;
    reg [1:0] int_ier;
    reg [1:0] int_isr;

    wire aw_hs = awvalid && awready;
    wire w_hs = wvalid && wready;
    wire ar_hs = arvalid && arready;
    wire ctrl_read = ar_hs && (araddr == ADDR_AP_CTRL);
    wire wr_low_byte = w_hs && wstrb[0];

    // ---- write channel: address, then data, then response
    assign awready = (wr_state == WR_IDLE);
    assign wready = (wr_state == WR_DATA);
    assign bvalid = (wr_state == WR_RESP);
    assign bresp = 2'b00;

    always @(posedge clk) begin
        if (!rst_n) begin
            wr_state <= WR_IDLE;
            wr_addr <= {ADDR_WIDTH{1'b0}};
        end else begin
            case (wr_state)
                WR_IDLE: if (aw_hs) begin
                    wr_addr <= awaddr;
                    wr_state <= WR_DATA;
                end
                WR_DATA: if (w_hs) wr_state <= WR_RESP;
                WR_RESP: if (bready) wr_state <= WR_IDLE;
                default: wr_state <= WR_IDLE;
            endcase
        end
    end

    // ---- read channel: the data is captured when the address is accepted
    assign arready = (rd_state == RD_IDLE);
    assign rvalid = (rd_state == RD_DATA);
    assign rdata = rd_data;
    assign rresp = 2'b00;

    always @(posedge clk) begin
        if (!rst_n) begin
            rd_state <= RD_IDLE;
            rd_data <= {DATA_WIDTH{1'b0}};
        end else begin
            case (rd_state)
                RD_IDLE: if (ar_hs) begin
                    rd_state <= RD_DATA;
                    case (araddr)
                        ADDR_AP_CTRL: rd_data <= {{(DATA_WIDTH-8){1'b0}}, int_auto_restart, 3'b000,
                                                  int_ap_ready, ap_idle, int_ap_done, int_ap_start};
                        ADDR_GIE: rd_data <= {{(DATA_WIDTH-1){1'b0}}, int_gie};
                        ADDR_IER: rd_data <= {{(DATA_WIDTH-2){1'b0}}, int_ier};
                        ADDR_ISR: rd_data <= {{(DATA_WIDTH-2){1'b0}}, int_isr};
                        default: rd_data <= {DATA_WIDTH{1'b0}};
                    endcase
                end
                RD_DATA: if (rready) rd_state <= RD_IDLE;
                default: rd_state <= RD_IDLE;
            endcase
        end
    end

    // ---- control registers
    always @(posedge clk) begin
        if (!rst_n) begin
            int_ap_start <= 1'b0;
            int_ap_done <= 1'b0;
            int_ap_ready <= 1'b0;
            int_auto_restart <= 1'b0;
            int_gie <= 1'b0;
            int_ier <= 2'b00;
            int_isr <= 2'b00;
        end else begin
            // ap_start stays set through an inference and drops with ap_ready
            // unless auto_restart asks for the next one.
            if (wr_low_byte && wr_addr == ADDR_AP_CTRL && wdata[0])
                int_ap_start <= 1'b1;
            else if (ap_ready)
                int_ap_start <= int_auto_restart;

            if (wr_low_byte && wr_addr == ADDR_AP_CTRL)
                int_auto_restart <= wdata[7];

            if (ap_done)
                int_ap_done <= 1'b1;
            else if (ctrl_read)
                int_ap_done <= 1'b0;

            if (ap_ready)
                int_ap_ready <= 1'b1;
            else if (ctrl_read)
                int_ap_ready <= 1'b0;

            if (wr_low_byte && wr_addr == ADDR_GIE)
                int_gie <= wdata[0];

            if (wr_low_byte && wr_addr == ADDR_IER)
                int_ier <= wdata[1:0];

            if (int_ier[0] && ap_done)
                int_isr[0] <= 1'b1;
            else if (wr_low_byte && wr_addr == ADDR_ISR)
                int_isr[0] <= int_isr[0] ^ wdata[0];

            if (int_ier[1] && ap_ready)
                int_isr[1] <= 1'b1;
            else if (wr_low_byte && wr_addr == ADDR_ISR)
                int_isr[1] <= int_isr[1] ^ wdata[1];
        end
    end

    assign ap_start = int_ap_start;
    assign interrupt = int_gie && (|int_isr);

    wire unused_wdata = &{1'b0, wdata[DATA_WIDTH-1:8], wdata[6:2], wstrb[DATA_WIDTH/8-1:1]};

endmodule

`default_nettype wire
