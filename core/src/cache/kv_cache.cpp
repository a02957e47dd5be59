#include "wp/cache/kv_cache.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>
#include <type_traits>

#include "wp/error.h"
#include "cache/kv_array.h"
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

const char* kv_type_name(KvType t) {
    switch (t) {
        case KvType::F32: return "f32";
        case KvType::F16: return "f16";
        case KvType::Q8: return "q8";
    }
    return "?";
}

KvType parse_kv_type(const std::string& s) {
    if (s == "f32") return KvType::F32;
    if (s == "f16") return KvType::F16;
    if (s == "q8") return KvType::Q8;
    throw Error("unknown KV cache type \"" + s + "\" (f32, f16 or q8)");
}

int kv_q8_block(int head_dim) {
    for (int b : {32, 16, 8})
        if (head_dim % b == 0) return b;
    return head_dim;
}

std::size_t kv_row_bytes(KvType t, int head_dim) {
    const std::size_t hd = static_cast<std::size_t>(head_dim);
    switch (t) {
        case KvType::F32: return hd * 4;
        case KvType::F16: return hd * 2;
        case KvType::Q8: return hd + hd / kv_q8_block(head_dim) * sizeof(float);
    }
    return 0;
}

namespace {

// One block of q8: scale amax / 127 and the nearest int8, ties away from zero (llama.cpp's q8_0
// rule, roundf), by truncating x + 0.5 toward zero: one instruction where lround and lrint are
// library calls.
// Writes the int8 to q, or the values they stand for to `rounded` (which may be x), when not null.
float quantize_block(const float* x, int n, std::int8_t* q, float* rounded = nullptr) {
    float amax = 0;
    for (int i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
    // A non-finite row (an overflowed activation) keeps a zero block rather than NaN's.
    const float d = std::isfinite(amax) ? amax / 127.0f : 0.0f, id = d > 0 ? 1.0f / d : 0.0f;
    for (int i = 0; i < n; ++i) {
        const float t = std::clamp(x[i] * id, -127.0f, 127.0f);
        const auto v = static_cast<std::int8_t>(t + (t < 0 ? -0.5f : 0.5f));
        if (q) q[i] = v;
        if (rounded) rounded[i] = static_cast<float>(v) * d;
    }
    return d;
}

}  // namespace

struct KvCache::Layer {
    // Reserved once, pages taken as written (kv_array.h).
    KvArray<float> k, v;
    KvArray<std::uint16_t> k16, v16;
    KvArray<std::int8_t> k8, v8;
    KvArray<float> ks, vs;  // q8 scales, one per block
    int ring = 0;             // > 0: ring buffer of this many slots
    std::int64_t cap = 0;     // slots grown to (attention's scratch is sized for them)
    std::int64_t stride = 0;  // slots reserved per head
    // keep_for_rewind: row j holds what position undo_from + j overwrote (the heads side by side).
    std::vector<float> undo_k, undo_v;
    std::vector<std::uint16_t> undo_k16, undo_v16;
    std::vector<std::int8_t> undo_k8, undo_v8;
    std::vector<float> undo_ks, undo_vs;
};

KvCache::~KvCache() = default;
KvCache::KvCache(KvCache&&) noexcept = default;
KvCache& KvCache::operator=(KvCache&&) noexcept = default;

int KvCache::num_layers() const { return static_cast<int>(layers_.size()); }
std::int64_t KvCache::allocated_slots(int layer) const { return layers_[layer].cap; }
std::int64_t KvCache::stride_slots(int layer) const { return layers_[layer].stride; }
const float* KvCache::keys(int layer) const { return layers_[layer].k.data(); }
const float* KvCache::values(int layer) const { return layers_[layer].v.data(); }
const std::uint16_t* KvCache::keys16(int layer) const { return layers_[layer].k16.data(); }
const std::uint16_t* KvCache::values16(int layer) const { return layers_[layer].v16.data(); }
const std::int8_t* KvCache::keys8(int layer) const { return layers_[layer].k8.data(); }
const std::int8_t* KvCache::values8(int layer) const { return layers_[layer].v8.data(); }
const float* KvCache::key_scales(int layer) const { return layers_[layer].ks.data(); }
const float* KvCache::value_scales(int layer) const { return layers_[layer].vs.data(); }
bool KvCache::is_ring(int layer) const { return layers_[layer].ring > 0; }

KvCache::KvCache(const ModelConfig& cfg, CacheKind kind, std::int64_t max_len, KvType type)
    : kind_(kind),
      type_(type),
      head_dim_(cfg.head_dim),
      kv_heads_(cfg.num_kv_heads),
      q8_block_(kv_q8_block(cfg.head_dim)),
      max_len_(kind == CacheKind::Dynamic ? 0 : max_len) {
    if (kind == CacheKind::Static && max_len <= 0)
        throw Error("a static cache needs a maximum length > 0");
    // A growing layer reserves twice the model's context (address space only: a conversation may
    // run past the context, and one at it must not move), bounded so that a cache reserves at most
    // 64 GB of it; past that it moves to a reservation twice as large.
    const double slot_bytes = 2.0 * cfg.num_layers * cfg.num_kv_heads * static_cast<double>(kv_row_bytes(type, cfg.head_dim));
    const double context = 2.0 * (cfg.max_position_embeddings > 0 ? cfg.max_position_embeddings : 32768);
    reserve_slots_ = static_cast<std::int64_t>(std::max(64.0, std::min(context, std::floor(64e9 / slot_bytes))));
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
    if (need > L.stride) {
        // A new reservation: the first, or a dynamic layer past its old one (the rows move).
        std::int64_t stride = cap;
        if (L.ring == 0 && max_len_ == 0) stride = std::max({cap, reserve_slots_, 2 * L.stride});
        const std::int64_t keep = std::min(length_, L.stride);
        const std::size_t hd = static_cast<std::size_t>(head_dim_), blocks = hd / static_cast<std::size_t>(q8_block_);
        auto reserve = [&](std::int64_t slots) {
            switch (type_) {
                case KvType::F32: L.k.reserve(kv_heads_, hd, slots, keep), L.v.reserve(kv_heads_, hd, slots, keep); break;
                case KvType::F16: L.k16.reserve(kv_heads_, hd, slots, keep), L.v16.reserve(kv_heads_, hd, slots, keep); break;
                case KvType::Q8:
                    L.k8.reserve(kv_heads_, hd, slots, keep), L.v8.reserve(kv_heads_, hd, slots, keep);
                    L.ks.reserve(kv_heads_, blocks, slots, keep), L.vs.reserve(kv_heads_, blocks, slots, keep);
                    break;
            }
        };
        try {
            reserve(stride);
        } catch (const std::bad_alloc&) {
            if (stride == cap) throw;
            stride = cap;  // address space refused (strict overcommit): only what is needed now
            reserve(stride);
        }
        L.stride = stride;
    }
    L.cap = std::min(cap, L.stride);
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

void KvCache::round_as_stored(float* rows, std::size_t count) const {
    if (type_ == KvType::F16) {
        std::uint16_t h[512];
        for (std::size_t i = 0; i < count; i += 512) {
            const std::size_t m = std::min<std::size_t>(512, count - i);
            f32_to_f16_array(rows + i, h, m);
            f16_to_f32_array(h, rows + i, m);
        }
    } else if (type_ == KvType::Q8) {
        for (std::size_t b = 0; b + q8_block_ <= count; b += q8_block_) quantize_block(rows + b, q8_block_, nullptr, rows + b);
    }
}

void KvCache::widen(int layer, int head, int slots, float* keys, float* values) const {
    const Layer& L = layers_[layer];
    const std::size_t at = offset(layer, 0, head), n = static_cast<std::size_t>(slots) * head_dim_;
    switch (type_) {
        case KvType::F32:
            std::copy_n(L.k.data() + at, n, keys);
            std::copy_n(L.v.data() + at, n, values);
            break;
        case KvType::F16:
            f16_to_f32_array(L.k16.data() + at, keys, n);
            f16_to_f32_array(L.v16.data() + at, values, n);
            break;
        case KvType::Q8:
            for (std::size_t b = 0; b < n; b += q8_block_) {
                const float dk = L.ks[(at + b) / q8_block_], dv = L.vs[(at + b) / q8_block_];
                for (int i = 0; i < q8_block_; ++i) {
                    keys[b + i] = static_cast<float>(L.k8[at + b + i]) * dk;
                    values[b + i] = static_cast<float>(L.v8[at + b + i]) * dv;
                }
            }
            break;
    }
}

// Copies `rows` consecutive K/V rows (the heads side by side, as the projections give them) into
// slots slot.., each head into its block (converted to the cache's type).
void KvCache::put(Layer& L, std::size_t slot, const float* k, const float* v, int rows) {
    const std::size_t block = static_cast<std::size_t>(L.stride) * head_dim_;
    for (int r = 0; r < rows; ++r)
        for (int h = 0; h < kv_heads_; ++h) {
            const std::size_t src = static_cast<std::size_t>(r) * kv_dim() + static_cast<std::size_t>(h) * head_dim_;
            const std::size_t at = h * block + (slot + r) * head_dim_;
            switch (type_) {
                case KvType::F32:
                    std::memcpy(L.k.data() + at, k + src, head_dim_ * sizeof(float));
                    std::memcpy(L.v.data() + at, v + src, head_dim_ * sizeof(float));
                    break;
                case KvType::F16:
                    f32_to_f16_array(k + src, L.k16.data() + at, head_dim_);
                    f32_to_f16_array(v + src, L.v16.data() + at, head_dim_);
                    break;
                case KvType::Q8:
                    for (int b = 0; b < head_dim_; b += q8_block_) {
                        L.ks[(at + b) / q8_block_] = quantize_block(k + src + b, q8_block_, L.k8.data() + at + b);
                        L.vs[(at + b) / q8_block_] = quantize_block(v + src + b, q8_block_, L.v8.data() + at + b);
                    }
                    break;
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
        filled(L, std::min<std::int64_t>(L.ring, length_ + count), count);
        return;
    }
    check_room(count);
    grow(L, length_ + count);
    put(L, static_cast<std::size_t>(length_), k, v, count);
    filled(L, length_ + count, count);
}

void KvCache::filled(Layer& L, std::int64_t slots, int count) {
    for (auto* a : {&L.k, &L.v, &L.ks, &L.vs}) ranges_queued_ |= a->filled(slots) > 0;
    for (auto* a : {&L.k16, &L.v16}) ranges_queued_ |= a->filled(slots) > 0;
    for (auto* a : {&L.k8, &L.v8}) ranges_queued_ |= a->filled(slots) > 0;
    if (!ranges_queued_) return;
    // A step's budget of collapses (kv_array.h), set once a step: two per row stored, at most 64,
    // so that ranges filled at once (a prompt pass) spread over the next decode steps instead of
    // stalling one (each collapse copies up to 2 MB).
    if (length_ > collapse_mark_) {
        collapse_mark_ = length_;
        collapse_budget_ = std::clamp(2 * count, 2, 64);
    }
    for (Layer& M : layers_)
        for (bool more = true; more && collapse_budget_ > 0;) {
            more = M.k.collapse() || M.v.collapse() || M.k16.collapse() || M.v16.collapse() || M.k8.collapse() ||
                   M.v8.collapse() || M.ks.collapse() || M.vs.collapse();
            if (more) --collapse_budget_;
        }
    if (collapse_budget_ > 0) ranges_queued_ = false;  // every queue ran dry first
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
    const std::size_t block = static_cast<std::size_t>(L.stride) * head_dim_, at = kept * kv_dim();
    switch (type_) {
        case KvType::F32:
            swap_slot(L.k.data(), L.v.data(), block, slot, kv_heads_, head_dim_, L.undo_k.data() + at,
                      L.undo_v.data() + at, to_slot);
            break;
        case KvType::F16:
            swap_slot(L.k16.data(), L.v16.data(), block, slot, kv_heads_, head_dim_, L.undo_k16.data() + at,
                      L.undo_v16.data() + at, to_slot);
            break;
        case KvType::Q8: {
            swap_slot(L.k8.data(), L.v8.data(), block, slot, kv_heads_, head_dim_, L.undo_k8.data() + at,
                      L.undo_v8.data() + at, to_slot);
            const int per = head_dim_ / q8_block_;
            swap_slot(L.ks.data(), L.vs.data(), block / q8_block_, slot, kv_heads_, per, L.undo_ks.data() + at / q8_block_,
                      L.undo_vs.data() + at / q8_block_, to_slot);
            break;
        }
    }
}

bool KvCache::keep_for_rewind(int count) {
    undo_count_ = 0;
    for (const Layer& L : layers_)
        if (L.ring > 0 && count > L.ring) return false;
    for (Layer& L : layers_) {
        if (L.ring == 0) continue;
        const std::size_t n = static_cast<std::size_t>(count) * kv_dim();
        if (type_ == KvType::F32 && L.undo_k.size() < n) L.undo_k.resize(n), L.undo_v.resize(n);
        if (type_ == KvType::F16 && L.undo_k16.size() < n) L.undo_k16.resize(n), L.undo_v16.resize(n);
        if (type_ == KvType::Q8 && L.undo_k8.size() < n) {
            L.undo_k8.resize(n), L.undo_v8.resize(n);
            L.undo_ks.resize(n / q8_block_), L.undo_vs.resize(n / q8_block_);
        }
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
    collapse_mark_ = std::min(collapse_mark_, len - 1);
}

void KvCache::clear() {
    length_ = 0;
    undo_count_ = 0;
    collapse_mark_ = -1;
}

std::size_t KvCache::bytes_used(int layer) const {
    return static_cast<std::size_t>(held(layer)) * kv_heads_ * kv_row_bytes(type_, head_dim_) * 2;
}

std::size_t KvCache::bytes_used() const {
    std::size_t b = 0;
    for (int l = 0; l < num_layers(); ++l) b += bytes_used(l);
    return b;
}

std::size_t KvCache::bytes_allocated() const {
    std::size_t b = 0;
    for (const Layer& L : layers_)
        b += L.k.footprint(L.cap) + L.v.footprint(L.cap) + L.k16.footprint(L.cap) + L.v16.footprint(L.cap) +
             L.k8.footprint(L.cap) + L.v8.footprint(L.cap) + L.ks.footprint(L.cap) + L.vs.footprint(L.cap);
    return b;
}

}  // namespace wp
