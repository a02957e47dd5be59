#!/usr/bin/env python3
"""Writes a vocab-only GGUF v3 (metadata, no tensors) from a Hugging Face tokenizer folder, with the
tokenizer keys llama.cpp's convert_hf_to_gguf.py writes for the same folder. Plain Python 3, no
third-party modules: the tests use it to build GGUF files from /work/shared/tokenizers/<name>.

usage: tokenizer_to_gguf.py FOLDER OUT.gguf --arch ARCH [--pre PRE] [--config KEY=VALUE ...]

ARCH is general.architecture ("gemma", "gemma2", "llama", "qwen2", "qwen3"); it picks the
converter's set_vocab as llama.cpp's model classes do:
- gemma, gemma2, llama: TextModel._set_vocab_sentencepiece (tokenizer.ggml.model "llama", pre
  "default"; tokens, scores and token types from _create_vocab_sentencepiece; special ids through
  gguf.SpecialVocab(n_vocab=...)); gemma and gemma2 add add_space_prefix = false
  (GemmaModel/Gemma2Model.set_vocab), gemma also the eot id 107 (GemmaModel.set_vocab).
- qwen2, qwen3: Qwen2Model.set_vocab falls back to TextModel._set_vocab_gpt2 without a
  tokenizer.model (model "gpt2"; tokens and types from get_vocab_base; merges through
  gguf.SpecialVocab(load_merges=True)).
--config KEY=VALUE stands for config.json entries the converter reads (vocab_size, bos_token_id,
eos_token_id, ...; the shared folders have no config.json).
--pre names tokenizer.ggml.pre; the converter derives it from a hash of HF-tokenizer output
(get_vocab_base_pre), which needs transformers: default "qwen2" for qwen2/qwen3, the value that
hash gives for the Qwen1.5/2/2.5/3 tokenizers.

Without tokenizer.model (the Gemma folders ship only tokenizer.json), the SentencePiece model that
_create_vocab_sentencepiece would read is reconstructed from tokenizer.json, which transformers'
GemmaConverter made from it: pieces and ids from model.vocab; types as SentencePiece reports them
(unk_token -> UNKNOWN, other special added tokens -> CONTROL, <0xXX> -> BYTE, else NORMAL, since the
converter does not ask is_user_defined); scores from the merges, whose order
(SentencePieceExtractor) follows the scores: a piece scores minus the rank of the first merge that
builds it, non-special added tokens (SentencePiece user-defined pieces) 0, the rest 0.
"""
import argparse
import json
import os
import struct
import sys

# gguf value types (gguf-py constants.GGUFValueType)
T_U32, T_I32, T_F32, T_BOOL, T_STR, T_ARR = 4, 5, 6, 7, 8, 9

# SentencePieceTokenTypes / gguf.TokenType
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6


def gguf_str(x):
    b = x if isinstance(x, bytes) else x.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def kv(key, typ, val):
    out = gguf_str(key) + struct.pack("<I", typ)
    if typ == T_U32:
        out += struct.pack("<I", val)
    elif typ == T_BOOL:
        out += struct.pack("<?", val)
    elif typ == T_STR:
        out += gguf_str(val)
    elif typ == T_ARR:
        etype, items = val
        out += struct.pack("<IQ", etype, len(items))
        if etype == T_STR:
            out += b"".join(gguf_str(i) for i in items)
        elif etype == T_F32:
            out += struct.pack("<%df" % len(items), *items)
        elif etype == T_I32:
            out += struct.pack("<%di" % len(items), *items)
    else:
        raise ValueError(typ)
    return out


# ---- tokenizer.model (protobuf) ----------------------------------------------------------------

def varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i
        shift += 7


def proto_fields(buf):
    """(field number, wire type, value) of one message; LEN values as bytes."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            val, i = varint(buf, i)
        elif wire == 1:
            val, i = buf[i:i + 8], i + 8
        elif wire == 2:
            n, i = varint(buf, i)
            val, i = buf[i:i + n], i + n
        elif wire == 5:
            val, i = buf[i:i + 4], i + 4
        else:
            raise ValueError("tokenizer.model: unsupported wire type %d" % wire)
        yield field, wire, val


def read_sentencepiece_model(path):
    """[(piece, score, type)] of ModelProto.pieces (field 1: piece 1, score 2, type 3)."""
    with open(path, "rb") as f:
        buf = f.read()
    pieces = []
    for field, wire, val in proto_fields(buf):
        if field != 1 or wire != 2:
            continue
        piece, score, typ = "", 0.0, NORMAL
        for f2, w2, v2 in proto_fields(val):
            if f2 == 1:
                piece = v2.decode("utf-8")
            elif f2 == 2:
                score = struct.unpack("<f", v2)[0]
            elif f2 == 3:
                typ = v2
        pieces.append((piece, score, typ))
    return pieces


def sentencepiece_from_tokenizer_json(tok):
    """The SentencePiece view of a GemmaConverter tokenizer.json (see the module docstring)."""
    model = tok["model"]
    vocab = model["vocab"]
    n = max(vocab.values()) + 1
    pieces = [None] * n
    for piece, i in vocab.items():
        pieces[i] = piece
    added = {a["id"]: a for a in tok.get("added_tokens", [])}
    for i, a in added.items():
        if i >= n:
            raise SystemExit("added token %d lies outside model.vocab: not a SentencePiece vocabulary" % i)
    score = [0.0] * n
    seen = set()
    for rank, m in enumerate(model.get("merges", [])):
        a, b = m.split(" ", 1) if isinstance(m, str) else m
        p = a + b
        if p in seen or p not in vocab:
            continue
        seen.add(p)
        score[vocab[p]] = -float(rank + 1)
    unk = model.get("unk_token")
    out = []
    for i, piece in enumerate(pieces):
        if piece is None:
            raise SystemExit("tokenizer.json: id %d missing from model.vocab" % i)
        typ = NORMAL
        s = score[i]
        if piece == unk:
            typ, s = UNKNOWN, 0.0
        elif i in added and added[i].get("special"):
            typ, s = CONTROL, 0.0
        elif i in added:
            s = 0.0  # a user-defined piece (reported as NORMAL, see the docstring)
        elif model.get("byte_fallback") and len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
            typ, s = BYTE, 0.0
        elif model.get("byte_fallback") and piece == "\t" and pieces[i - 1] == "<0x08>":
            # GemmaConverter.vocab writes SentencePiece's byte piece <0x09> as "\t"
            piece, typ, s = "<0x09>", BYTE, 0.0
        out.append((piece, s, typ))
    return out


# ---- convert_hf_to_gguf.py ----------------------------------------------------------------------

def does_token_look_special(token):
    """ModelBase.does_token_look_special."""
    seems = token in ("<pad>", "<mask>", "<2mass>", "[@BOS@]")
    seems = seems or (token.startswith("<|") and token.endswith("|>"))
    seems = seems or (token.startswith("<\uff5c") and token.endswith("\uff5c>"))
    seems = seems or (token.startswith("<unused") and token.endswith(">"))
    return seems


def load_json(path):
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def create_vocab_sentencepiece(folder, hparams):
    """TextModel._create_vocab_sentencepiece."""
    model_file = os.path.join(folder, "tokenizer.model")
    if os.path.isfile(model_file):
        sp = read_sentencepiece_model(model_file)
    else:
        tok = load_json(os.path.join(folder, "tokenizer.json"))
        if tok is None:
            raise SystemExit(folder + ": neither tokenizer.model nor tokenizer.json")
        sp = sentencepiece_from_tokenizer_json(tok)
    vocab_size = hparams.get("vocab_size") or len(sp)
    tokens = [("[PAD%d]" % i) for i in range(vocab_size)]
    scores = [-10000.0] * vocab_size
    toktypes = [UNUSED] * vocab_size
    for i, (piece, score, typ) in enumerate(sp):
        if i >= vocab_size:
            break
        # IsUnknown / IsControl / IsUnused / IsByte, else NORMAL (user-defined pieces too)
        toktypes[i] = typ if typ in (UNKNOWN, CONTROL, UNUSED, BYTE) else NORMAL
        tokens[i] = piece
        scores[i] = score
    added_tokens = load_json(os.path.join(folder, "added_tokens.json")) or {}
    for key, i in added_tokens.items():
        if i < vocab_size:
            tokens[i], scores[i], toktypes[i] = key, -1000.0, USER_DEFINED
    config = load_json(os.path.join(folder, "tokenizer_config.json")) or {}
    for key, data in config.get("added_tokens_decoder", {}).items():
        i = int(key)
        if i >= vocab_size:
            continue
        token = data["content"]
        if data.get("special") or does_token_look_special(token):
            toktypes[i] = CONTROL
        else:
            token = token.replace("\u2581", " ")  # pre-normalize user-defined spaces
            toktypes[i] = USER_DEFINED
        scores[i] = -1000.0
        tokens[i] = token
    return tokens, scores, toktypes


def get_vocab_base(folder, hparams):
    """TextModel.get_vocab_base for a tokenizer.json folder (AutoTokenizer's vocab is model.vocab
    plus added_tokens; decode(encode(token)) of a non-normalized added token is the token itself
    for the byte-level tokenizers this script handles)."""
    tok = load_json(os.path.join(folder, "tokenizer.json"))
    if tok is None:
        raise SystemExit(folder + ": no tokenizer.json")
    vocab = dict(tok["model"]["vocab"])
    added = {a["content"]: a for a in tok.get("added_tokens", [])}
    for a in added.values():
        vocab[a["content"]] = a["id"]
    vocab_size = hparams.get("vocab_size") or len(vocab)
    reverse = {i: t for t, i in vocab.items()}
    tokens, toktypes = [], []
    for i in range(vocab_size):
        if i not in reverse:
            tokens.append("[PAD%d]" % i)
            toktypes.append(UNUSED)
            continue
        token = reverse[i]
        if token in added:
            if added[token].get("special") or does_token_look_special(token):
                toktypes.append(CONTROL)
            else:
                token = token.replace("\u2581", " ")
                toktypes.append(USER_DEFINED)
        else:
            toktypes.append(NORMAL)
        tokens.append(token)
    return tokens, toktypes


class SpecialVocab:
    """gguf.SpecialVocab: merges, special-token ids, add_*_token flags and the chat template."""

    def __init__(self, folder, hparams, load_merges=False, n_vocab=None, types=None):
        self.merges, self.ids, self.add, self.chat_template = [], {}, {}, None
        self.n_vocab = n_vocab
        self.types = list(types or ("bos", "eos", "unk", "sep", "pad", "cls", "mask"))
        tok = load_json(os.path.join(folder, "tokenizer.json"))
        config = load_json(os.path.join(folder, "tokenizer_config.json"))
        added = []
        if tok is not None:
            if load_merges:
                merges = tok.get("model", {}).get("merges") or []
                if merges and isinstance(merges[0], str):
                    self.merges = list(merges)
                elif merges:
                    # pairs (tokenizers >= 0.20): spaces inside a part become U+0120
                    self.merges = [" ".join("".join(chr(ord(c) + 256) if c == " " else c for c in part)
                                            for part in pair) for pair in merges]
            added = tok.get("added_tokens", [])
            # (the post_processor TemplateProcessing parsing only adds add_bos/add_eos when the
            # config lacks them; the shared configs state both or neither matter)
        if config is not None:
            jinja = os.path.join(folder, "chat_template.jinja")
            alt = None
            if os.path.isfile(jinja):
                with open(jinja, encoding="utf-8") as f:
                    alt = f.read()
            self.chat_template = config.get("chat_template", alt)
            for typ in self.types:
                flag = config.get("add_%s_token" % typ)
                if isinstance(flag, bool):
                    self.add[typ] = flag
                entry = config.get("%s_token" % typ)
                if isinstance(entry, dict):
                    entry = entry.get("content")
                if not isinstance(entry, str):
                    continue
                self.set(typ, next((a["id"] for a in added if a.get("content") == entry), None))
        for typ in self.types:  # _try_load_from_config_json
            self.set(typ, hparams.get("%s_token_id" % typ))

    def set(self, typ, tid):
        if not isinstance(tid, int) or typ in self.ids:
            return
        if self.n_vocab is None or tid < self.n_vocab:
            self.ids[typ] = tid


def tokenizer_metadata(folder, arch, hparams, pre=None):
    """The tokenizer.* metadata entries (encoded) for the tokenizer of `folder`."""
    meta = []
    if arch in ("gemma", "gemma2", "llama"):
        tokens, scores, toktypes = create_vocab_sentencepiece(folder, hparams)
        meta += [kv("tokenizer.ggml.model", T_STR, "llama"), kv("tokenizer.ggml.pre", T_STR, "default"),
                 kv("tokenizer.ggml.tokens", T_ARR, (T_STR, tokens)),
                 kv("tokenizer.ggml.scores", T_ARR, (T_F32, scores)),
                 kv("tokenizer.ggml.token_type", T_ARR, (T_I32, toktypes))]
        special = SpecialVocab(folder, hparams, n_vocab=len(tokens))
        if arch == "gemma":
            special.types.append("eot")
            special.set("eot", 107)
    elif arch in ("qwen2", "qwen3"):
        tokens, toktypes = get_vocab_base(folder, hparams)
        meta += [kv("tokenizer.ggml.model", T_STR, "gpt2"), kv("tokenizer.ggml.pre", T_STR, pre or "qwen2"),
                 kv("tokenizer.ggml.tokens", T_ARR, (T_STR, tokens)),
                 kv("tokenizer.ggml.token_type", T_ARR, (T_I32, toktypes))]
        special = SpecialVocab(folder, hparams, load_merges=True)
    else:
        raise SystemExit("unknown --arch " + arch)

    # SpecialVocab.add_to_gguf: merges, then ids, then flags, then the template
    if special.merges:
        meta.append(kv("tokenizer.ggml.merges", T_ARR, (T_STR, special.merges)))
    names = {"bos": "bos", "eos": "eos", "unk": "unknown", "sep": "seperator", "pad": "padding",
             "cls": "cls", "mask": "mask", "eot": "eot"}
    for typ, tid in special.ids.items():
        meta.append(kv("tokenizer.ggml.%s_token_id" % names[typ], T_U32, tid))
    for typ, flag in special.add.items():
        if typ in ("bos", "eos", "sep"):
            meta.append(kv("tokenizer.ggml.add_%s_token" % typ, T_BOOL, flag))
    if special.chat_template is not None:
        if not isinstance(special.chat_template, str):
            raise SystemExit("named chat templates are not supported by this script")
        meta.append(kv("tokenizer.chat_template", T_STR, special.chat_template))
    if arch in ("gemma", "gemma2"):
        meta.append(kv("tokenizer.ggml.add_space_prefix", T_BOOL, False))

    return meta


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folder")
    ap.add_argument("out")
    ap.add_argument("--arch", required=True)
    ap.add_argument("--pre")
    ap.add_argument("--config", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    hparams = {}
    for item in args.config:
        k, _, v = item.partition("=")
        hparams[k] = json.loads(v)

    meta = [kv("general.architecture", T_STR, args.arch)] + tokenizer_metadata(args.folder, args.arch, hparams, args.pre)
    with open(args.out, "wb") as f:
        f.write(b"GGUF" + struct.pack("<IQQ", 3, 0, len(meta)) + b"".join(meta))


if __name__ == "__main__":
    main()
