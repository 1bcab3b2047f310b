// C entry points of the shared library that C simulation builds from the
// generated sources, for ctypes. Every inference goes through mon_top, the
// function that synthesis compiles. Only two things differ from synthesis,
// and both give the same integers: weight codes stored in a native integer
// type (mon_config.h) and the native dot product of mon::dot_row.
#include <stdint.h>

#include "mon_top.h"

#define MON_EXPORT extern "C" __attribute__((visibility("default")))

MON_EXPORT int mon_input_beats() { return mon_config::input_beats; }

MON_EXPORT int mon_output_beats() { return mon_config::output_beats; }

MON_EXPORT int mon_input_features() { return mon_config::input_features; }

MON_EXPORT int mon_classes() { return mon_config::classes; }

// Runs `count` inferences: input_beats words each from `input_words`, writing
// output_beats words each to `output_words`. Returns the number of inferences
// run, or -1 - i when inference i did not produce every output word.
MON_EXPORT long mon_run_batch(const uint32_t* input_words, long count, uint32_t* output_words) {
    hls::stream<axis_word> x_stream;
    hls::stream<axis_word> y_stream;
    for (long n = 0; n < count; ++n) {
        const uint32_t* in = input_words + n * mon_config::input_beats;
        for (int beat = 0; beat < mon_config::input_beats; ++beat) {
            axis_word word;
            word.data = in[beat];
            word.keep = 0xF;
            word.strb = 0xF;
            word.last = beat == mon_config::input_beats - 1 ? 1 : 0;
            x_stream.write(word);
        }

        mon_top(x_stream, y_stream);

        uint32_t* out = output_words + n * mon_config::output_beats;
        for (int j = 0; j < mon_config::output_beats; ++j) {
            if (y_stream.empty()) {
                return -1 - n;
            }
            out[j] = (uint32_t)y_stream.read().data.to_uint();
        }
    }
    return count;
}
