#include "wp/cache/kv_cache.h"

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "wp/error.h"
#include "kernels/huge_pages.h"
#include "kernels/f16_vectors.h"

namespace wp {

const char* cache_kind_name(CacheKind k) {
    switch (k) {
        case CacheKind::Dynamic: return "dynamic";
        case CacheKind::Static: return "static";
        case CacheKind::Hybrid: return "hybrid";
    }
    return "?";
}

CacheKind parse_cache_kind(const std::string& s) {
    if (s == "dynamic") return CacheKind::Dynamic;
    if (s == "static") return CacheKind::Static;
    if (s == "hybrid") return CacheKind::Hybrid;
    throw Error("unknown cache kind \"" + s + "\" (dynamic, static or hybrid)");
}

struct KvCache::Layer {
    // Read whole every token: in huge pages once large (huge_pages.h).
    std::vector<float, HugePageAllocator<float>> k, v;
    std::vector<std::uint16_t, HugePageAllocator<std::uint16_t>> k16, v16;
    int ring = 0;          // > 0: ring buffer of this many slots
    std::int64_t cap = 0;  // allocated slots
    // keep_for_rewind: row j holds what position undo_from + j overwrote (the heads side by side).
    std::vector<float> undo_k, undo_v;
    std::vector<std::uint16_t> undo_k16, undo_v16;
};

KvCache::~KvCache() = default;
KvCache::KvCache(KvCache&&) noexcept = default;
KvCache& KvCache::operator=(KvCache&&) noexcept = default;

int KvCache::num_layers() const { return static_cast<int>(layers_.size()); }
std::int64_t KvCache::allocated_slots(int layer) const { return layers_[layer].cap; }
const float* KvCache::keys(int layer) const { return layers_[layer].k.data(); }
const float* KvCache::values(int layer) const { return layers_[layer].v.data(); }
const std::uint16_t* KvCache::keys16(int layer) const { return layers_[layer].k16.data(); }
const std::uint16_t* KvCache::values16(int layer) const { return layers_[layer].v16.data(); }
bool KvCache::is_ring(int layer) const { return layers_[layer].ring > 0; }

KvCache::KvCache(const ModelConfig& cfg, CacheKind kind, std::int64_t max_len, bool half)
    : kind_(kind),
      half_(half),
      head_dim_(cfg.head_dim),
      kv_heads_(cfg.num_kv_heads),
      max_len_(kind == CacheKind::Dynamic ? 0 : max_len) {
    if (kind == CacheKind::Static && max_len <= 0)
        throw Error("a static cache needs a maximum length > 0");
    layers_.resize(cfg.num_layers);
    for (int l = 0; l < cfg.num_layers; ++l) {
        Layer& L = layers_[l];
        if (kind == CacheKind::Hybrid && cfg.layer_masks[l].window > 0) {
            L.ring = cfg.layer_masks[l].window;
            if (max_len_ > 0) L.ring = static_cast<int>(std::min<std::int64_t>(L.ring, max_len_));
            grow(L, L.ring);
        } else if (max_len_ > 0) {
            grow(L, max_len_);
        }
    }
}

void KvCache::grow(Layer& L, std::int64_t need) {
    if (need <= L.cap) return;
    std::int64_t cap = L.ring > 0 ? L.ring : std::max<std::int64_t>(need, std::max<std::int64_t>(64, 2 * L.cap));
    if (max_len_ > 0 && L.ring == 0) cap = std::max(need, max_len_);
    // Each head's block moves to its place in the larger arrays.
    auto regrow = [&](auto& a) {
        std::remove_reference_t<decltype(a)> b(static_cast<std::size_t>(cap) * kv_dim());
        const std::size_t old_block = static_cast<std::size_t>(L.cap) * head_dim_, new_block = static_cast<std::size_t>(cap) * head_dim_;
        if (!a.empty())
            for (int h = 0; h < kv_heads_; ++h)
                std::copy(a.begin() + h * old_block, a.begin() + (h + 1) * old_block, b.begin() + h * new_block);
        a.swap(b);
    };
    if (half_) {
        regrow(L.k16);
        regrow(L.v16);
    } else {
        regrow(L.k);
        regrow(L.v);
    }
    L.cap = cap;
}

void KvCache::check_room(std::int64_t count) const {
    if (max_len_ > 0 && length_ + count > max_len_)
        throw Error(std::string("the ") + cache_kind_name(kind_) + " cache holds at most " +
                    std::to_string(max_len_) + " tokens; " + std::to_string(length_) +
                    " are cached and " + std::to_string(count) + " more were given");
}

int KvCache::held(int layer) const {
    const Layer& L = layers_[layer];
    if (L.ring > 0) return static_cast<int>(std::min<std::int64_t>(length_, L.ring));
    return static_cast<int>(length_);
}

std::int64_t KvCache::slot_position(int layer, int slot) const {
    const Layer& L = layers_[layer];
    if (L.ring == 0) return slot;
    // The newest position p < length_ with p % ring == slot.
    const std::int64_t last = length_ - 1;
    return last - ((last - slot) % L.ring + L.ring) % L.ring;
}

std::vector<std::int64_t> KvCache::positions(int layer) const {
    std::vector<std::int64_t> out(held(layer));
    for (int s = 0; s < static_cast<int>(out.size()); ++s) out[s] = slot_position(layer, s);
    return out;
}

// Copies `rows` consecutive K/V rows (the heads side by side, as the projections give them) into
// slots slot.., each head into its block (converting to f16 for a half cache).
void KvCache::put(Layer& L, std::size_t slot, const float* k, const float* v, int rows) {
    const std::size_t block = static_cast<std::size_t>(L.cap) * head_dim_;
    for (int r = 0; r < rows; ++r)
        for (int h = 0; h < kv_heads_; ++h) {
            const std::size_t src = static_cast<std::size_t>(r) * kv_dim() + static_cast<std::size_t>(h) * head_dim_;
            const std::size_t at = h * block + (slot + r) * head_dim_;
            if (half_) {
                f32_to_f16_array(k + src, L.k16.data() + at, head_dim_);
                f32_to_f16_array(v + src, L.v16.data() + at, head_dim_);
            } else {
                std::memcpy(L.k.data() + at, k + src, head_dim_ * sizeof(float));
                std::memcpy(L.v.data() + at, v + src, head_dim_ * sizeof(float));
            }
        }
}

void KvCache::store(int layer, const float* k, const float* v, int count) {
    Layer& L = layers_[layer];
    if (L.ring > 0) {
        const int first = std::max(0, count - L.ring);  // earlier rows would be overwritten anyway
        for (int i = first; i < count; ++i) {
            const std::size_t slot = static_cast<std::size_t>((length_ + i) % L.ring);
            put(L, slot, k + static_cast<std::size_t>(i) * kv_dim(), v + static_cast<std::size_t>(i) * kv_dim(), 1);
        }
        return;
    }
    check_room(count);
    grow(L, length_ + count);
    put(L, static_cast<std::size_t>(length_), k, v, count);
}

namespace {

// Copies one slot's rows (every head) to or from a kept row (heads side by side).
template <typename T>
void swap_slot(T* keys, T* values, std::size_t block, std::size_t slot, int heads, int hd, T* kept_k, T* kept_v,
               bool to_slot) {
    for (int h = 0; h < heads; ++h) {
        T* k = keys + h * block + slot * hd;
        T* v = values + h * block + slot * hd;
        T* kk = kept_k + static_cast<std::size_t>(h) * hd;
        T* kv = kept_v + static_cast<std::size_t>(h) * hd;
        if (to_slot) {
            std::copy_n(kk, hd, k);
            std::copy_n(kv, hd, v);
        } else {
            std::copy_n(k, hd, kk);
            std::copy_n(v, hd, kv);
        }
    }
}

}  // namespace

void KvCache::move_kept(Layer& L, std::size_t slot, std::size_t kept, bool to_slot) {
    const std::size_t block = static_cast<std::size_t>(L.cap) * head_dim_, at = kept * kv_dim();
    if (half_)
        swap_slot(L.k16.data(), L.v16.data(), block, slot, kv_heads_, head_dim_, L.undo_k16.data() + at,
                  L.undo_v16.data() + at, to_slot);
    else
        swap_slot(L.k.data(), L.v.data(), block, slot, kv_heads_, head_dim_, L.undo_k.data() + at, L.undo_v.data() + at,
                  to_slot);
}

bool KvCache::keep_for_rewind(int count) {
    undo_count_ = 0;
    for (const Layer& L : layers_)
        if (L.ring > 0 && count > L.ring) return false;
    for (Layer& L : layers_) {
        if (L.ring == 0) continue;
        const std::size_t n = static_cast<std::size_t>(count) * kv_dim();
        if (half_ && L.undo_k16.size() < n) L.undo_k16.resize(n), L.undo_v16.resize(n);
        if (!half_ && L.undo_k.size() < n) L.undo_k.resize(n), L.undo_v.resize(n);
        for (int j = 0; j < count; ++j) {
            const std::int64_t p = length_ + j;
            if (p < L.ring) continue;  // the slot holds nothing yet
            move_kept(L, static_cast<std::size_t>(p % L.ring), static_cast<std::size_t>(j), false);
        }
    }
    undo_from_ = length_;
    undo_count_ = count;
    return true;
}

void KvCache::truncate(std::int64_t len) {
    if (len < 0 || len > length_) throw Error("cannot truncate the cache to " + std::to_string(len));
    if (len == length_) return;
    // A ring layer holds [length - ring, length); rewinding needs [len - ring, len), which it
    // still has only if nothing was overwritten yet, or the overwritten rows were kept.
    const bool kept = undo_count_ > 0 && len >= undo_from_ && length_ <= undo_from_ + undo_count_;
    for (Layer& L : layers_) {
        if (L.ring == 0 || len == 0 || length_ <= L.ring) continue;
        if (!kept) throw Error("a hybrid cache cannot rewind its sliding layers past their window; start a new cache");
        for (std::int64_t p = len; p < length_; ++p) {
            if (p < L.ring) continue;
            move_kept(L, static_cast<std::size_t>(p % L.ring), static_cast<std::size_t>(p - undo_from_), true);
        }
    }
    length_ = len;
}

void KvCache::clear() {
    length_ = 0;
    undo_count_ = 0;
}

std::size_t KvCache::bytes_used(int layer) const {
    return static_cast<std::size_t>(held(layer)) * kv_dim() * elem() * 2;
}

std::size_t KvCache::bytes_used() const {
    std::size_t b = 0;
    for (int l = 0; l < num_layers(); ++l) b += bytes_used(l);
    return b;
}

std::size_t KvCache::bytes_allocated() const {
    std::size_t b = 0;
    // As allocated: a buffer of 2 MB or more takes whole 2 MB pages.
    for (const Layer& L : layers_)
        b += huge_page_footprint(L.k.size() * sizeof(float)) + huge_page_footprint(L.v.size() * sizeof(float)) +
             huge_page_footprint(L.k16.size() * 2) + huge_page_footprint(L.v16.size() * 2);
    return b;
}

}  // namespace wp
