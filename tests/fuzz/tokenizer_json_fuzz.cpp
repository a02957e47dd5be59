// Fuzzes the tokenizer.json loader: the bytes are written as tokenizer.json into a scratch folder,
// loaded, and a short text is encoded and decoded when the load succeeds.
#include <cstddef>
#include <cstdint>
#include <exception>

#include "fuzz_support.h"
#include "wp/error.h"
#include "wp/tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    wp::fuzz::write_scratch("tokenizer.json", data, size);
    try {
        auto tok = wp::Tokenizer::load(wp::fuzz::scratch_dir());
        auto ids = tok->encode("Hello world, 12 émigrés!\n", true);
        (void)tok->decode(ids, false);
    } catch (const wp::Error&) {
    } catch (const std::exception&) {
    }
    return 0;
}
