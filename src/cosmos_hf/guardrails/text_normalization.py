"""Text normalisation for the keyword blocklist: de-obfuscation and a small pure-Python lemmatiser.

Obfuscations undone here (each one seen in real prompt-filter evasion):
  * Unicode tricks: accents (kíll), full-width letters, look-alike Cyrillic/Greek letters (kіll with a
    Cyrillic i), zero-width characters inside words.
  * leet-speak: digits and symbols standing for letters (k1ll, n@ked, $ex, 3xpl0s1ve).
  * punctuation inside words: k.i.l.l, k-i-l-l, k*ll, s_e_x.
  * spacing: k i l l (runs of single letters are joined).
  * stretched letters: kiiiill, nakeeed (runs of 3+ equal letters).

The lemmatiser returns *candidate* lemmas (killing -> {killing, kill, kille}): the blocklist only asks
"is any candidate a blocked lemma?", so over-generating candidates is cheap and safe, while a wrong single
guess would be a miss. Irregular forms that suffix rules cannot reach are listed explicitly.
"""

import re
import unicodedata

# Characters that render as nothing; attackers put them inside words to break matching.
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e"), None)

# Look-alike letters from other scripts -> ASCII (NFKD does not fold these).
_HOMOGLYPHS = str.maketrans(
    {
        "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "х": "x", "у": "y", "і": "i", "ј": "j",
        "ѕ": "s", "к": "k", "м": "m", "н": "h", "т": "t", "в": "b", "г": "r", "л": "n", "ԁ": "d",
        "ɡ": "g", "ӏ": "l", "Α": "a", "Β": "b", "Ε": "e", "Ι": "i", "Κ": "k", "Μ": "m", "Ν": "n",
        "Ο": "o", "Ρ": "p", "Τ": "t", "Χ": "x", "Υ": "y", "α": "a", "ο": "o", "ρ": "p", "ι": "i",
        "κ": "k", "ν": "v", "τ": "t", "υ": "u", "χ": "x", "ß": "ss", "æ": "ae", "ø": "o", "ł": "l",
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
_INTRA_WORD_SEPARATORS = ".-_*'`~^\"·•,:;/\\"

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


def join_spaced_letters(tokens: list[str], split_leading_word: bool = False) -> list[str]:
    """Join runs of 3+ single-character tokens ("k i l l" -> "kill").

    With `split_leading_word`, a run that starts with a real one-letter word keeps it apart
    ("a n u d e" -> "a", "nude"); callers match both readings.
    """
    out, run = [], []
    for tok in tokens + [""]:
        if len(tok) == 1 and tok != "":
            run.append(tok)
            continue
        if split_leading_word and len(run) >= 4 and run[0] in ("a", "i"):
            out.append(run[0])
            run = run[1:]
        if len(run) >= 3:
            out.append("".join(run))
        else:
            out.extend(run)
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
    if word.endswith("es") and n > 3:
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
