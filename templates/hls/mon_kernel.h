// Fixed-point MON inference kernel: injection, forward-backward or
// Peaceman-Rachford iteration, stopping rule and logits.
//
// This header is hand-written and generic. A design supplies a config struct
// (sizes, code types, shifts, parallelism) and its weight arrays; the
// generator emits only those. The arithmetic is the mon2hls datapath
// contract, operation for operation, so the C++ agrees with the Python
// golden model on every output word.
//
// Why every value is an integer code in ap_int and not an ap_fixed: a
// product is requantized by a 16-bit multiplier and a per-matrix shift
// (y = RND(acc * mult, shift)), which ap_fixed cannot express without a
// format per row, and the contract fixes where rounding and saturation
// happen (rounding before adding the bias, one saturation after it).
// ap_fixed<W, I, AP_RND, AP_SAT> applies both at every assignment, so a
// chain of ap_fixed assignments could round or saturate in places the
// contract does not. The helpers below apply AP_RND (round half up, toward
// plus infinity) and AP_SAT exactly where the contract specifies them. A code
// q of a `<W, I>` format is the real value q * 2^-(W - I).
//
// NOTE: this kernel is checked by C simulation only. It has not been through
// Vitis HLS synthesis yet, so the pragmas (placement, and template-dependent
// factors such as CFG::parallel) are unverified for timing and resources.
#ifndef MON_KERNEL_H
#define MON_KERNEL_H

#include "ap_int.h"

namespace mon {

// Tags selecting the operator splitting at compile time.
struct forward_backward {};
struct peaceman_rachford {};

// Largest and smallest code of a W-bit two's complement format.
template <int W>
struct signed_limits {
    static ap_int<W + 1> max_code() { return (ap_int<W + 1>(1) << (W - 1)) - 1; }
    static ap_int<W + 1> min_code() { return -(ap_int<W + 1>(1) << (W - 1)); }
};

// AP_SAT: min(max(a, -2^(OUT_W-1)), 2^(OUT_W-1) - 1). Comparisons between
// ap_int of different widths compare values, so no bit is lost here.
template <int OUT_W, int IN_W>
ap_int<OUT_W> saturate(const ap_int<IN_W>& a) {
#pragma HLS INLINE
    if (a > signed_limits<OUT_W>::max_code()) {
        return ap_int<OUT_W>(signed_limits<OUT_W>::max_code());
    }
    if (a < signed_limits<OUT_W>::min_code()) {
        return ap_int<OUT_W>(signed_limits<OUT_W>::min_code());
    }
    return ap_int<OUT_W>(a);
}

// AP_RND by SHIFT bits: floor((a + 2^(SHIFT-1)) / 2^SHIFT) for SHIFT > 0, an
// exact multiplication by 2^-SHIFT otherwise. The sum is formed in a type one
// bit wider than both the operand and the rounding constant, so it never
// wraps, and >> on a signed ap_int is an arithmetic shift (floor).
template <int SHIFT, bool RIGHT = (SHIFT > 0)>
struct rounding_shift;

template <int SHIFT>
struct rounding_shift<SHIFT, true> {
    template <int W>
    static ap_int<W + 1> apply(const ap_int<W>& a) {
#pragma HLS INLINE
        const int sum_width = (W > SHIFT ? W : SHIFT) + 1;
        ap_int<(W > SHIFT ? W : SHIFT) + 1> sum = a;
        sum += ap_int<sum_width>(1) << (SHIFT - 1);
        sum >>= SHIFT;
        return ap_int<W + 1>(sum);
    }
};

template <int SHIFT>
struct rounding_shift<SHIFT, false> {
    template <int W>
    static ap_int<W + 1 - SHIFT> apply(const ap_int<W>& a) {
#pragma HLS INLINE
        ap_int<W + 1 - SHIFT> wide = a;
        return wide << (-SHIFT);
    }
};

// Exact dot product of one row of B-bit weight codes with a vector of codes,
// in an accumulator the certificate sized for the worst case, so the sum
// never wraps.
//
// C simulation forms the same exact sum in a native 64-bit integer when the
// accumulator is at most 63 bits wide. The worst case that sized the
// accumulator bounds every partial sum too, so the result is the same integer.
// The native path exists for speed: ap_int multiply-accumulates with a product
// wider than 32 bits measured about 50 ns each (g++ 12, -O2, hls4ml's
// ap_types), so a 10,000-input comparison would take many minutes.
template <class acc_t, int COLS, int PARALLEL, class weight_t, class value_t>
acc_t dot_row(const weight_t codes[COLS], const value_t v[COLS]) {
#pragma HLS INLINE
#ifndef __SYNTHESIS__
    if (acc_t::width <= 63) {
        long long sum = 0;
        for (int j = 0; j < COLS; ++j) {
            sum += (long long)codes[j] * v[j].to_int64();
        }
        return acc_t(sum);
    }
#endif
    acc_t acc = 0;
MAC:
    for (int j = 0; j < COLS; ++j) {
#pragma HLS PIPELINE II = 1
#pragma HLS UNROLL factor = PARALLEL
        acc += codes[j] * v[j];
    }
    return acc;
}

// Register for RND(acc * mult, SHIFT) for an ACC_W-bit accumulator:
// the 17-bit signed view of the multiplier widens the product, a right shift
// may round up by one, and a left shift (SHIFT <= 0) widens it by -SHIFT bits.
template <int SHIFT, int ACC_W>
struct requantized {
    static const int width = ACC_W + 18 + (SHIFT < 0 ? -SHIFT : 0);
    typedef ap_int<width> type;
};

// RND(acc * mult, SHIFT): the per-row requantization of a product from its
// operand's fractional bits to the result's. mult is an unsigned 16-bit code.
template <int SHIFT, int ACC_W, class mult_t>
typename requantized<SHIFT, ACC_W>::type requantize(const ap_int<ACC_W>& acc, const mult_t& mult) {
#pragma HLS INLINE
    const ap_int<ACC_W + 17> scaled = acc * ap_int<17>(mult);
    return rounding_shift<SHIFT>::apply(scaled);
}

// One forward-backward iteration with the stored G = M - I:
//   t = SAT(z + RND(G z) + d), z' = max(t, 0).
// The identity part of M is the exact term z, and the three-term sum is
// formed at full width before its only saturation. Returns
// res = max_i |z'_i - z_i| and updates z in place.
template <class CFG>
typename CFG::residual_t iterate(forward_backward, const typename CFG::weight_t op_codes[CFG::hidden_units][CFG::hidden_units],
                                 const typename CFG::multiplier_t op_mults[CFG::hidden_units],
                                 const typename CFG::state_t d[CFG::hidden_units], typename CFG::state_t z[CFG::hidden_units],
                                 typename CFG::state_t u[CFG::hidden_units]) {
#pragma HLS INLINE
    typedef typename CFG::state_t state_t;
    typedef typename CFG::operator_acc_t acc_t;
    typedef typename requantized<CFG::operator_shift, acc_t::width>::type rounded_t;
    const int N = CFG::hidden_units;
    const int WS = state_t::width;
    (void)u;

    state_t z_next[N];
#pragma HLS ARRAY_PARTITION variable = z_next cyclic factor = CFG::parallel
MATVEC_ROW:
    for (int i = 0; i < N; ++i) {
        const acc_t acc = dot_row<acc_t, N, CFG::parallel>(op_codes[i], z);
        const rounded_t rounded = requantize<CFG::operator_shift>(acc, op_mults[i]);
        const state_t t = saturate<WS>(ap_int<rounded_t::width + 2>(rounded) + z[i] + d[i]);
        z_next[i] = t > 0 ? t : state_t(0);
    }

    typename CFG::residual_t res = 0;
UPDATE:
    for (int i = 0; i < N; ++i) {
#pragma HLS PIPELINE II = 1
        const ap_int<WS + 1> diff = ap_int<WS + 1>(z_next[i]) - z[i];
        const typename CFG::residual_t step = diff < 0 ? typename CFG::residual_t(-diff) : typename CFG::residual_t(diff);
        if (step > res) {
            res = step;
        }
        z[i] = z_next[i];
    }
    return res;
}

// One Peaceman-Rachford iteration on u:
//   h = SAT(2 z - u), w = SAT(h + d), zh = SAT(RND(V w)), u' = SAT(2 zh - h), z' = max(u', 0).
// Returns res = max_i |u'_i - u_i| and updates u and z in place.
template <class CFG>
typename CFG::residual_t iterate(peaceman_rachford, const typename CFG::weight_t op_codes[CFG::hidden_units][CFG::hidden_units],
                                 const typename CFG::multiplier_t op_mults[CFG::hidden_units],
                                 const typename CFG::state_t d[CFG::hidden_units], typename CFG::state_t z[CFG::hidden_units],
                                 typename CFG::state_t u[CFG::hidden_units]) {
#pragma HLS INLINE
    typedef typename CFG::state_t state_t;
    typedef typename CFG::operator_acc_t acc_t;
    const int N = CFG::hidden_units;
    const int WS = state_t::width;

    state_t u_half[N];
    state_t w[N];
    state_t z_half[N];
#pragma HLS ARRAY_PARTITION variable = u_half cyclic factor = CFG::parallel
#pragma HLS ARRAY_PARTITION variable = w cyclic factor = CFG::parallel
#pragma HLS ARRAY_PARTITION variable = z_half cyclic factor = CFG::parallel

PREPARE:
    for (int i = 0; i < N; ++i) {
#pragma HLS PIPELINE II = 1
        u_half[i] = saturate<WS>((ap_int<WS + 2>(z[i]) << 1) - u[i]);
        w[i] = saturate<WS>(ap_int<WS + 1>(u_half[i]) + d[i]);
    }

MATVEC_ROW:
    for (int i = 0; i < N; ++i) {
        const acc_t acc = dot_row<acc_t, N, CFG::parallel>(op_codes[i], w);
        z_half[i] = saturate<WS>(requantize<CFG::operator_shift>(acc, op_mults[i]));
    }

    typename CFG::residual_t res = 0;
UPDATE:
    for (int i = 0; i < N; ++i) {
#pragma HLS PIPELINE II = 1
        const state_t u_next = saturate<WS>((ap_int<WS + 2>(z_half[i]) << 1) - u_half[i]);
        const ap_int<WS + 1> diff = ap_int<WS + 1>(u_next) - u[i];
        const typename CFG::residual_t step = diff < 0 ? typename CFG::residual_t(-diff) : typename CFG::residual_t(diff);
        if (step > res) {
            res = step;
        }
        u[i] = u_next;
        z[i] = u_next > 0 ? u_next : state_t(0);
    }
    return res;
}

// One inference: injection, iteration until res <= tolerance_lsb or
// max_iterations, then the logits. `iterations` is the number of iterations
// performed (at least 1) and `converged` whether the stopping rule fired.
template <class CFG>
void mon_infer(const typename CFG::input_t x[CFG::input_features],
               const typename CFG::weight_t injection_codes[CFG::hidden_units][CFG::input_features],
               const typename CFG::multiplier_t injection_multipliers[CFG::hidden_units],
               const typename CFG::state_t injection_bias[CFG::hidden_units],
               const typename CFG::weight_t operator_codes[CFG::hidden_units][CFG::hidden_units],
               const typename CFG::multiplier_t operator_multipliers[CFG::hidden_units],
               const typename CFG::weight_t output_codes[CFG::classes][CFG::hidden_units],
               const typename CFG::multiplier_t output_multipliers[CFG::classes],
               const typename CFG::logit_t output_bias[CFG::classes], typename CFG::logit_t y[CFG::classes],
               typename CFG::iteration_t& iterations, bool& converged) {
    typedef typename CFG::state_t state_t;
    const int N = CFG::hidden_units;
    const int WS = state_t::width;
    const int LW = CFG::logit_t::width;
    const int tolerance = CFG::tolerance_lsb;

    state_t d[N];
    state_t z[N];
    state_t u[N];
#pragma HLS ARRAY_PARTITION variable = d cyclic factor = CFG::parallel
#pragma HLS ARRAY_PARTITION variable = z cyclic factor = CFG::parallel
#pragma HLS ARRAY_PARTITION variable = u cyclic factor = CFG::parallel

    // d_i = SAT(RND(sum_j Qu_ij x_j * mult_u_i, shift_u) + bias_i): computed once per input.
INJECTION:
    for (int i = 0; i < N; ++i) {
        const typename CFG::injection_acc_t acc =
            dot_row<typename CFG::injection_acc_t, CFG::input_features, CFG::parallel>(injection_codes[i], x);
        d[i] = saturate<WS>(requantize<CFG::injection_shift>(acc, injection_multipliers[i]) + injection_bias[i]);
    }

RESET_STATE:
    for (int i = 0; i < N; ++i) {
        z[i] = 0;
        u[i] = 0;
    }

    iterations = 0;
    converged = false;
ITERATION:
    for (int k = 1; k <= CFG::max_iterations; ++k) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = CFG::max_iterations
        const typename CFG::residual_t res =
            iterate<CFG>(typename CFG::splitting(), operator_codes, operator_multipliers, d, z, u);
        iterations = k;
        if (res <= tolerance) {
            converged = true;
            break;
        }
    }

    // y_i = SAT_y(RND(sum_j Qo_ij z_j * mult_o_i, shift_o) + bias_out_i).
LOGITS:
    for (int i = 0; i < CFG::classes; ++i) {
        const typename CFG::output_acc_t acc =
            dot_row<typename CFG::output_acc_t, N, CFG::parallel>(output_codes[i], z);
        y[i] = saturate<LW>(requantize<CFG::output_shift>(acc, output_multipliers[i]) + output_bias[i]);
    }
}

}  // namespace mon

#endif  // MON_KERNEL_H
