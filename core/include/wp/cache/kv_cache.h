// KV caches with the semantics of transformers' DynamicCache, StaticCache and HybridCache.
//
// Each layer stores a key and a value row of head_dim per KV head in slots. Linear layers put
// position p in slot p; ring layers (the sliding layers of a hybrid cache) put it in slot
// p % window and so hold only the last `window` positions, however long the sequence.
//
// Rows are kept head-major: all slots of KV head 0, then of head 1, ..., so attention streams one
// head's keys and values from contiguous memory (heads side by side in each slot put one head's
// rows a power of two apart, which caches and prefetchers handle poorly; docs/KERNELS.md).
// Each head's block is reserved at the layer's stride (a growing layer: the model's context), so
// growing takes pages as they are written and moves no rows, unless a dynamic cache outgrows it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "wp/model/model_config.h"

namespace wp {

enum class CacheKind { Dynamic, Static, Hybrid };

const char* cache_kind_name(CacheKind k);
CacheKind parse_cache_kind(const std::string& s);  // throws wp::Error

// How K and V rows are held: f32; f16 (half the bytes; the quantized precisions' default, as
// llama.cpp's); q8: blocks of kv_q8_block(head_dim) int8 with one f32 scale each (as llama.cpp's
// q8_0 cache, -ctk q8_0 -ctv q8_0: about a quarter of f32's bytes, a rounding error of at most
// half a step, amax / 254, per element).
enum class KvType { F32, F16, Q8 };

const char* kv_type_name(KvType t);          // "f32", "f16", "q8"
KvType parse_kv_type(const std::string& s);  // the same names; throws wp::Error
int kv_q8_block(int head_dim);  // the largest of 32, 16, 8 dividing head_dim, else head_dim
std::size_t kv_row_bytes(KvType t, int head_dim);  // one head's K (or V) row as held

class KvCache {
public:
    // max_len: Static: the preallocated capacity (required, > 0). Hybrid: capacity of the global
    // layers when > 0 (as transformers' HybridCache), growing when 0. Dynamic: ignored.
    KvCache(const ModelConfig& cfg, CacheKind kind, std::int64_t max_len = 0, KvType type = KvType::F32);
    ~KvCache();
    KvCache(KvCache&&) noexcept;
    KvCache& operator=(KvCache&&) noexcept;
    KvCache(const KvCache&) = delete;
    KvCache& operator=(const KvCache&) = delete;

    CacheKind kind() const { return kind_; }
    int num_layers() const;
    std::int64_t length() const { return length_; }  // positions seen so far = next position
    std::int64_t capacity() const { return max_len_; }  // 0 = unbounded

    // Throws a wp::Error when `count` more tokens would not fit (static capacity).
    void check_room(std::int64_t count) const;

    // The rows the layer holds now, for attention over the past.
    int held(int layer) const;                      // number of valid slots
    std::int64_t allocated_slots(int layer) const;  // slots grown to (doubling), at most stride_slots
    std::int64_t stride_slots(int layer) const;     // slots reserved per head: head blocks this far apart
    KvType type() const { return type_; }
    bool half() const { return type_ == KvType::F16; }
    // Head h's row in slot s starts at offset(layer, s, h) in these arrays; one head's rows are
    // contiguous, head_dim() apart.
    const float* keys(int layer) const;  // type() F32
    const float* values(int layer) const;
    const std::uint16_t* keys16(int layer) const;  // F16
    const std::uint16_t* values16(int layer) const;
    const std::int8_t* keys8(int layer) const;  // Q8: element i's scale is key_scales[i / q8_block()]
    const std::int8_t* values8(int layer) const;
    const float* key_scales(int layer) const;
    const float* value_scales(int layer) const;
    int q8_block() const { return q8_block_; }
    // Head h's first `slots` K and V rows as f32 (slots x head_dim each), whatever the type.
    void widen(int layer, int head, int slots, float* keys, float* values) const;
    // Rounds rows of K or V (count floats, whole head rows) to what storing them would keep, so
    // that attention reads new rows as it will read them from the cache (f16, q8; f32: as is).
    void round_as_stored(float* rows, std::size_t count) const;
    int head_dim() const { return head_dim_; }
    std::size_t head_stride(int layer) const { return static_cast<std::size_t>(stride_slots(layer)) * head_dim_; }
    std::size_t offset(int layer, int slot, int head) const {
        return head * head_stride(layer) + static_cast<std::size_t>(slot) * head_dim_;
    }
    std::int64_t slot_position(int layer, int slot) const;
    // Absolute positions the layer holds, in slot order.
    std::vector<std::int64_t> positions(int layer) const;
    bool is_ring(int layer) const;

    // Stores the K/V rows of `count` new tokens at positions length() .. length()+count-1.
    // Call for every layer, then advance(count).
    void store(int layer, const float* k, const float* v, int count);
    void advance(int count) { length_ += count; }

    // Drops everything after the first `len` positions (len <= length()). Ring layers cannot go
    // back once they have overwritten a slot, so then this throws unless len is 0 or length(),
    // or the overwritten rows were kept by keep_for_rewind().
    void truncate(std::int64_t len);
    // Keeps aside the ring layers' rows that the next `count` positions will overwrite, so that
    // truncate() can go back to any length from length() on while no more than `count` positions
    // have been added (draft tokens being verified). False when a ring is shorter than `count`
    // (then it cannot). Buffers grow to the largest count asked, once.
    bool keep_for_rewind(int count);
    void clear();

    std::size_t bytes_used(int layer) const;   // held positions x K and V rows
    std::size_t bytes_used() const;
    std::size_t bytes_allocated() const;  // the memory the slots grown to take, in whole pages

private:
    struct Layer;  // one layer's K and V rows (kv_cache.cpp)
    void grow(Layer& L, std::int64_t need);

    void put(Layer& L, std::size_t slot, const float* k, const float* v, int rows);
    // The layer's first `slots` slots hold rows (its arrays queue ranges for huge pages), and
    // this step's budget of collapses is spent on the queued ones.
    void filled(Layer& L, std::int64_t slots, int count);
    // Copies a slot's rows (every head) into kept row `kept` of keep_for_rewind, or back.
    void move_kept(Layer& L, std::size_t slot, std::size_t kept, bool to_slot);

    CacheKind kind_;
    KvType type_;
    int head_dim_, kv_heads_, q8_block_;
    int kv_dim() const { return head_dim_ * kv_heads_; }
    std::int64_t max_len_;
    std::int64_t reserve_slots_;  // a growing layer's first reservation per head
    std::int64_t length_ = 0;
    std::vector<Layer> layers_;
    std::int64_t undo_from_ = 0;  // keep_for_rewind: the length then, and the positions covered
    int undo_count_ = 0;
    std::int64_t collapse_mark_ = -1;  // the length whose step last had a budget of collapses
    int collapse_budget_ = 0;
    bool ranges_queued_ = false;  // some layer's array may have ranges queued
};

}  // namespace wp
