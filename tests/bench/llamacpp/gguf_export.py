#!/usr/bin/env python3
"""Writes a Windowpane model folder (config.json + safetensors, e.g. from `windowpane-cli synth`) as a
GGUF file that llama.cpp loads, for the side-by-side benchmark. Plain Python, no third-party modules.

Matrices keep the folder's dtype (F32 or BF16, as llama.cpp's converter does with --outtype);
one-dimensional tensors become F32 (Gemma's norm weights get llama.cpp's +1). The vocabulary is a
placeholder of the model's size (control, byte and filler pieces): benchmarks feed token ids. With
--vocab, the folder's own tokenizer and chat template are written instead, as llama.cpp's converter
writes them (tests/gguf/tokenizer_to_gguf.py), for a file that chats.

usage: gguf_export.py MODEL_DIR OUT.gguf [--vocab]
"""
import json
import os
import struct
import sys

GGML_F32, GGML_BF16 = 0, 30
FILE_TYPE = {GGML_F32: 0, GGML_BF16: 32}  # llama_ftype ALL_F32, MOSTLY_BF16
ALIGN = 32

# gguf value types
T_U32, T_I32, T_F32, T_BOOL, T_STR, T_ARR = 4, 5, 6, 7, 8, 9


def s(x):
    b = x.encode()
    return struct.pack("<Q", len(b)) + b


def kv(key, typ, val):
    out = s(key) + struct.pack("<I", typ)
    if typ == T_U32:
        out += struct.pack("<I", val)
    elif typ == T_I32:
        out += struct.pack("<i", val)
    elif typ == T_F32:
        out += struct.pack("<f", val)
    elif typ == T_BOOL:
        out += struct.pack("<?", val)
    elif typ == T_STR:
        out += s(val)
    elif typ == T_ARR:
        etype, items = val
        out += struct.pack("<IQ", etype, len(items))
        if etype == T_STR:
            out += b"".join(s(i) for i in items)
        elif etype == T_F32:
            out += struct.pack("<%df" % len(items), *items)
        elif etype == T_I32:
            out += struct.pack("<%di" % len(items), *items)
    return out


def read_safetensors(folder):
    index = os.path.join(folder, "model.safetensors.index.json")
    files = sorted(set(json.load(open(index))["weight_map"].values())) if os.path.exists(index) else ["model.safetensors"]
    tensors = {}
    for f in files:
        path = os.path.join(folder, f)
        with open(path, "rb") as fh:
            n = struct.unpack("<Q", fh.read(8))[0]
            header = json.loads(fh.read(n))
        for name, info in header.items():
            if name == "__metadata__":
                continue
            b, e = info["data_offsets"]
            tensors[name] = (path, 8 + n + b, e - b, info["dtype"], info["shape"])
    return tensors


def main():
    args = [a for a in sys.argv[1:] if a != "--vocab"]
    if len(args) != 2:
        sys.exit(__doc__)
    folder, out = args
    real_vocab = "--vocab" in sys.argv[1:]
    cfg = json.load(open(os.path.join(folder, "config.json")))
    arch = cfg["model_type"]
    if arch not in ("gemma", "gemma2", "qwen2"):
        sys.exit("unsupported model_type " + arch)
    gemma = arch != "qwen2"
    H, L = cfg["hidden_size"], cfg["num_hidden_layers"]
    heads = cfg["num_attention_heads"]
    head_dim = cfg.get("head_dim") or H // heads
    V = cfg["vocab_size"]
    src = read_safetensors(folder)
    mat_type = GGML_BF16 if src["model.embed_tokens.weight"][3] == "BF16" else GGML_F32

    names = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
             "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate",
             "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    if arch == "gemma2":
        names.update({"post_attention_layernorm": "post_attention_norm", "pre_feedforward_layernorm": "ffn_norm",
                      "post_feedforward_layernorm": "post_ffw_norm"})
    else:
        names["post_attention_layernorm"] = "ffn_norm"

    def gguf_name(hf):
        if hf == "model.embed_tokens.weight":
            return "token_embd.weight"
        if hf == "model.norm.weight":
            return "output_norm.weight"
        if hf == "lm_head.weight":
            return "output.weight"
        parts = hf.split(".")
        layer, rest, kind = parts[2], ".".join(parts[3:-1]), parts[-1]
        return "blk.%s.%s.%s" % (layer, names[rest], kind)

    meta = [kv("general.architecture", T_STR, arch), kv("general.name", T_STR, os.path.basename(folder.rstrip("/"))),
            kv("general.file_type", T_U32, FILE_TYPE[mat_type]), kv("general.alignment", T_U32, ALIGN),
            kv(arch + ".context_length", T_U32, cfg.get("max_position_embeddings", 8192)),
            kv(arch + ".embedding_length", T_U32, H), kv(arch + ".block_count", T_U32, L),
            kv(arch + ".feed_forward_length", T_U32, cfg["intermediate_size"]),
            kv(arch + ".attention.head_count", T_U32, heads),
            kv(arch + ".attention.head_count_kv", T_U32, cfg.get("num_key_value_heads") or heads),
            kv(arch + ".attention.layer_norm_rms_epsilon", T_F32, cfg.get("rms_norm_eps", 1e-6)),
            kv(arch + ".rope.freq_base", T_F32, cfg.get("rope_theta", 10000.0))]
    if gemma:
        meta += [kv(arch + ".attention.key_length", T_U32, head_dim), kv(arch + ".attention.value_length", T_U32, head_dim)]
    if arch == "gemma2":
        meta += [kv("gemma2.attn_logit_softcapping", T_F32, cfg.get("attn_logit_softcapping") or 50.0),
                 kv("gemma2.final_logit_softcapping", T_F32, cfg.get("final_logit_softcapping") or 30.0),
                 kv("gemma2.attention.sliding_window", T_U32, cfg.get("sliding_window") or 4096)]
    if real_vocab:
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "gguf"))
        import tokenizer_to_gguf
        meta += tokenizer_to_gguf.tokenizer_metadata(folder, arch, cfg)
    # Placeholder SentencePiece-style vocabulary: <unk> <s> </s>, the 256 byte pieces, fillers.
    tokens, types = ["<unk>", "<s>", "</s>"], [2, 3, 3]
    tokens += ["<0x%02X>" % b for b in range(256)]
    types += [6] * 256
    tokens += ["\u2581t%d" % i for i in range(V - len(tokens))]
    types += [1] * (V - len(types))
    meta += [] if real_vocab else [kv("tokenizer.ggml.model", T_STR, "llama"), kv("tokenizer.ggml.tokens", T_ARR, (T_STR, tokens)),
             kv("tokenizer.ggml.scores", T_ARR, (T_F32, [0.0] * V)),
             kv("tokenizer.ggml.token_type", T_ARR, (T_I32, types)),
             kv("tokenizer.ggml.unknown_token_id", T_U32, 0), kv("tokenizer.ggml.bos_token_id", T_U32, 1),
             kv("tokenizer.ggml.eos_token_id", T_U32, 2), kv("tokenizer.ggml.add_bos_token", T_BOOL, False)]

    order = sorted(src, key=lambda n: (0 if "embed" in n else 2 if n.startswith("model.norm") or n == "lm_head.weight" else 1,
                                       int(n.split(".")[2]) if n.startswith("model.layers.") else 0, n))
    infos, plan, offset = [], [], 0
    for hf in order:
        path, start, size, dtype, shape = src[hf]
        one_d = len(shape) == 1
        typ = GGML_F32 if one_d else mat_type
        if not one_d and (dtype == "BF16") != (typ == GGML_BF16):
            sys.exit("mixed dtypes are not supported: " + hf)
        nbytes = 4 * shape[0] if one_d else size
        ne = list(reversed(shape))
        infos.append(s(gguf_name(hf)) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne) +
                     struct.pack("<IQ", typ, offset))
        plan.append((hf, path, start, size, dtype, one_d, offset))
        offset += (nbytes + ALIGN - 1) // ALIGN * ALIGN

    with open(out, "wb") as fo:
        head = b"GGUF" + struct.pack("<IQQ", 3, len(infos), len(meta)) + b"".join(meta) + b"".join(infos)
        fo.write(head + b"\0" * ((-len(head)) % ALIGN))
        base = fo.tell()
        for hf, path, start, size, dtype, one_d, off in plan:
            fo.seek(base + off)
            with open(path, "rb") as fi:
                fi.seek(start)
                if one_d:
                    raw = fi.read(size)
                    if dtype == "BF16":
                        vals = [struct.unpack("<f", b"\0\0" + raw[i:i + 2])[0] for i in range(0, len(raw), 2)]
                    else:
                        vals = list(struct.unpack("<%df" % (len(raw) // 4), raw))
                    if gemma and "norm" in hf:
                        vals = [v + 1.0 for v in vals]
                    fo.write(struct.pack("<%df" % len(vals), *vals))
                else:
                    left = size
                    while left:
                        chunk = fi.read(min(left, 64 << 20))
                        fo.write(chunk)
                        left -= len(chunk)
        fo.truncate(base + offset)
    print("wrote %s: %d tensors, %s" % (out, len(infos), "BF16" if mat_type == GGML_BF16 else "F32"))


if __name__ == "__main__":
    main()
