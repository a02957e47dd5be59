// Fuzzes the tokenizer.model (SentencePiece) loader: the bytes are written as tokenizer.model into a
// scratch folder, loaded, and a short text is encoded, decoded and looked up when the load succeeds.
// libsentencepiece itself is Debian's, uninstrumented: the run finds its crashes, hangs and large
// allocations, while ASan watches only the project's side of the boundary.
#include <cstddef>
#include <cstdint>
#include <exception>

#include "fuzz_support.h"
#include "wp/error.h"
#include "wp/tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    wp::fuzz::write_scratch("tokenizer.model", data, size);
    try {
        auto tok = wp::Tokenizer::load(wp::fuzz::scratch_dir());
        auto ids = tok->encode("Hello world, 12 émigrés!\n<bos>  x", true);
        (void)tok->decode(ids, false);
        for (int id : ids) (void)tok->piece(id);
        (void)tok->piece(tok->vocab_size());
        (void)tok->piece_to_id("▁Hello");
    } catch (const wp::Error&) {
    } catch (const std::exception&) {
    }
    return 0;
}
