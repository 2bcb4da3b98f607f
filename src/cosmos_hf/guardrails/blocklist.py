"""Keyword blocklist pre-guard: whole-word (lemmatised), partial and fuzzy matches, a whitelist, and
co-occurrence rules, all robust to the usual obfuscations (see `text_normalization`).

Each prompt is matched in several readings (`KeywordBlocklist.readings`): as written, with URL/HTML/backslash escapes
decoded, with words broken by line breaks joined, base64 runs decoded, rot13 and reversed (when most words are not
English), and with non-English words reversed, rot13-decoded or split into English words. Entries in non-Latin
scripts (Russian, Chinese, Japanese lists) match as substrings of the normalised prompt, since those languages do not
separate words the way the tokeniser expects.

The default lists ship with the package (`wordlists/`, our own lists; the reference's downloadable lists
are not used). A blocklist is deliberately high-recall and cheap; semantic harm that uses no listed word
("push him off the cliff") is the LLM classifier's job (`llm_classifier.py`).

    >>> blocklist = KeywordBlocklist.default()
    >>> blocklist.check("a robot arm stacking red cubes").is_safe
    True
    >>> blocklist.check("a man with a g.u.n").reason
    "matched 'gun' (category: weapons, whole word) in token 'gun'"
"""

import re
from dataclasses import dataclass
from pathlib import Path

from .core import GuardrailVerdict
from .text_normalization import (
    LEET_MAP,
    base64_decodings,
    decode_escapes,
    deleet_variants,
    english_vocabulary,
    has_stretched_letters,
    join_broken_words,
    join_spaced_letters,
    lemma_candidates,
    normalize_unicode,
    raw_tokens,
    replace_emoji,
    rot13,
    segment_words,
    split_raw_token,
    squeeze_repeats,
)

DEFAULT_WORDLIST_DIR = Path(__file__).parent / "wordlists"

# Words skipped inside phrases, so that "slit the throat" / "make a bomb" match "slit throat" / "make bomb".
# Object pronouns (her, him, them) are NOT skipped: "shoot her" must stay a two-word rule.
PHRASE_FILLER_WORDS = frozenset("a an the some this that these those his their my your its our".split())
GAP = "~"  # in a phrase entry: up to MAX_GAP arbitrary words ("slit ~ throat" matches "slit the old man's throat")
MAX_GAP = 3
# A non-English word is read as words run together if it splits into 3+ words, or 2 words and this many letters
MIN_JOINED_LENGTH = 10


@dataclass
class _Token:
    """One position of a token stream: what the user wrote and every reading of it we match against."""

    surface: str  # as written (after unicode folding), for the reason message
    variants: set  # de-leeted (and de-stretched) spellings
    candidates: set  # lemma candidates of all variants
    obfuscated: bool  # had separators / leet symbols / non-ASCII / stretched letters / spaced letters
    exempt: bool = False  # inside a whitelisted span
    wildcard: "re.Pattern | None" = None  # for words written with stars for letters ("f*ck")
    star_form: str = ""  # the word with each run of stars as one "*" ("f*ckface")


def _edit_distance_at_most_one(a: str, b: str) -> bool:
    """True when a and b differ by at most one insertion, deletion, substitution or adjacent transposition."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    i = 0
    while i < min(la, lb) and a[i] == b[i]:
        i += 1
    if la == lb:
        if a[i + 1 :] == b[i + 1 :]:
            return True  # substitution
        return i + 1 < la and a[i] == b[i + 1] and a[i + 1] == b[i] and a[i + 2 :] == b[i + 2 :]  # transposition
    if la > lb:
        return a[i + 1 :] == b[i:]
    return a[i:] == b[i + 1 :]


def _entry_words(entry: str) -> tuple[str, ...]:
    """Tokenise a list entry exactly like prompt text (so "self-harm" and "self harm" behave alike)."""
    words = []
    for chunk in entry.split():
        if chunk == GAP:
            words.append(GAP)
            continue
        for raw in raw_tokens(normalize_unicode(chunk)):
            words.extend(split_raw_token(raw)[1])
    return tuple(w for w in words if w not in PHRASE_FILLER_WORDS)


def read_wordlist(path) -> list[str]:
    """Entries of one list file: stripped lines, comments ('#') and blank lines dropped."""
    entries = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            entries.append(line)
    return entries


class KeywordBlocklist:
    """Blocks prompts that contain listed words or phrases, however they are disguised.

    Args:
        entries: category -> list of entries ("word", "multi word phrase", or "*fragment" for partial matches).
        whitelist: words/phrases whose spans are exempt ("killer whale", "Scunthorpe").
        cooccurrence: (category, terms_a, terms_b) or (category, terms_a, terms_b, exceptions) rules: blocked when a
            term of each side occurs anywhere and none of the exceptions does.
        fuzzy_min_chars: single-word entries at least this long also match one-typo variants (edit distance 1)
            of words that look obfuscated; plain words need this length too and the same first and last letter.
        enable_fuzzy: turn the fuzzy match off entirely (exact lemma and partial matches only).
    """

    def __init__(
        self,
        entries: dict[str, list[str]],
        whitelist: list[str] = (),
        cooccurrence: list[tuple[str, list[str], list[str]]] = (),
        fuzzy_min_chars: int = 7,
        plain_fuzzy_min_chars: int = 8,
        enable_fuzzy: bool = True,
    ):
        if fuzzy_min_chars < 4 or plain_fuzzy_min_chars < fuzzy_min_chars:
            raise ValueError(
                f"need 4 <= fuzzy_min_chars <= plain_fuzzy_min_chars, got {fuzzy_min_chars}, {plain_fuzzy_min_chars}"
            )
        # kept so that lists can be extended (from_reference_directory)
        self._source_entries = {category: list(items) for category, items in entries.items()}
        self._source_whitelist = list(whitelist)
        self._source_cooccurrence = list(cooccurrence)
        self.fuzzy_min_chars = fuzzy_min_chars
        self.plain_fuzzy_min_chars = plain_fuzzy_min_chars
        self.enable_fuzzy = enable_fuzzy
        self._phrases: dict[str, list[tuple[tuple[str, ...], str, str]]] = {}  # first word -> (words, category, entry)
        self._fragments: list[tuple[str, str, str]] = []  # (fragment, category, entry)
        self._fuzzy_words: list[tuple[str, str]] = []  # (word, category), long words only
        self._single_words: list[tuple[str, str]] = []  # (word, category)
        self._squeezed: dict[str, tuple[str, str]] = {}  # squeeze_repeats(word) -> (word, category)
        self._script_entries: list[tuple[str, str, str]] = []  # (normalised substring, category, entry): non-Latin
        self.num_entries = 0
        for category, items in entries.items():
            for item in items:
                self._add_entry(item, category)
        if self.num_entries == 0:
            raise ValueError("the blocklist has no entries: it would pass every prompt (check the word-list files)")
        self._single_word_set = frozenset(word for word, _ in self._single_words)
        self._whitelist: dict[str, list[tuple[str, ...]]] = {}
        for item in whitelist:
            words = _entry_words(item)
            if words:
                self._whitelist.setdefault(words[0], []).append(words)
        self._whitelisted_words = frozenset(w[0] for group in self._whitelist.values() for w in group if len(w) == 1)
        self._cooccurrence = [
            (rule[0], frozenset(rule[1]), frozenset(rule[2]), frozenset(rule[3] if len(rule) > 3 else ()))
            for rule in cooccurrence
        ]
        self._vocabulary = english_vocabulary()
        self._listed_words = frozenset(
            {w for group in self._phrases.values() for words, _, _ in group for w in words if w != GAP}
            | {w for _, side_a, side_b, _ in self._cooccurrence for w in side_a | side_b}
        )

    def _add_entry(self, item: str, category: str):
        normalised = normalize_unicode(item.lstrip("*")).strip()
        if any(ord(ch) > 127 and ch.isalpha() for ch in normalised):
            # a non-Latin script (Cyrillic, CJK): matched as a substring of the normalised prompt
            self._script_entries.append((normalised, category, item))
            self.num_entries += 1
            return
        if item.startswith("*"):
            fragment = normalize_unicode(item[1:]).strip()
            if len(fragment) < 3:
                raise ValueError(f"partial-match fragment {item!r} is too short (at least 3 letters)")
            self._fragments.append((fragment, category, item))
            self.num_entries += 1
            return
        words = _entry_words(item)
        if not words:
            raise ValueError(f"blocklist entry {item!r} has no words")
        self._phrases.setdefault(words[0], []).append((words, category, item))
        if GAP in words and (words[0] == GAP or words[-1] == GAP):
            raise ValueError(f"blocklist entry {item!r}: a gap '~' must sit between two words")
        if len(words) == 1:
            self._single_words.append((words[0], category))
            self._squeezed.setdefault(squeeze_repeats(words[0]), (words[0], category))
            if len(words[0]) >= self.fuzzy_min_chars:
                self._fuzzy_words.append((words[0], category))
        self.num_entries += 1

    @classmethod
    def from_directory(cls, directory=DEFAULT_WORDLIST_DIR, **kwargs) -> "KeywordBlocklist":
        """Load `blocklist_<category>[.<part>].txt`, `whitelist.txt` and `cooccurrence.txt` from a folder.

        Files of one category may be split into parts (`blocklist_violence.i18n.txt`: other languages). A folder
        whose lists hold no entry at all is an error, never a blocklist that passes everything.
        """
        directory = Path(directory)
        if not directory.is_dir():
            raise FileNotFoundError(f"word-list folder not found: {directory}")
        entries = {}
        for path in sorted(directory.glob("blocklist_*.txt")):
            category = path.stem[len("blocklist_") :].split(".")[0]
            entries.setdefault(category, []).extend(read_wordlist(path))
        if not entries:
            raise ValueError(f"no blocklist_<category>.txt files in {directory}")
        if not any(entries.values()):
            raise ValueError(f"the blocklist files in {directory} hold no entries (only blank lines or comments): "
                             f"a blocklist must block something")
        whitelist = read_wordlist(directory / "whitelist.txt") if (directory / "whitelist.txt").is_file() else []
        cooccurrence = []
        if (directory / "cooccurrence.txt").is_file():
            for line in read_wordlist(directory / "cooccurrence.txt"):
                category, _, rule = line.partition(":")
                rule, _, exceptions = rule.partition("!")
                side_a, sep, side_b = rule.partition("&")
                if not sep or not side_a.split() or not side_b.split():
                    raise ValueError(f"bad co-occurrence rule {line!r}: expected 'category: terms ... & terms ... "
                                     f"[! exceptions ...]'")
                cooccurrence.append((category.strip(), side_a.split(), side_b.split(), exceptions.split()))
        return cls(entries, whitelist=whitelist, cooccurrence=cooccurrence, **kwargs)

    @classmethod
    def from_reference_directory(cls, directory, include_default: bool = True, **kwargs) -> "KeywordBlocklist":
        """Our lists plus the reference's downloaded ones: `custom/`, `exact_match/` and `whitelist/` folders of
        keyword files (one entry a line), as in the reference's `guardrail/blocklist` checkpoint folder."""
        directory = Path(directory)
        folders = {name: directory / name for name in ("custom", "exact_match", "whitelist")}
        if not any(folder.is_dir() for folder in folders.values()):
            raise FileNotFoundError(f"{directory} has none of the reference's custom/ exact_match/ whitelist/ folders")

        def read_folder(folder):
            return [e for path in sorted(folder.glob("*")) if path.is_file() for e in read_wordlist(path)]

        base = cls.from_directory(DEFAULT_WORDLIST_DIR) if include_default else None
        entries = dict(base._source_entries) if base else {}
        whitelist = list(base._source_whitelist) if base else []
        cooccurrence = list(base._source_cooccurrence) if base else []
        for name in ("custom", "exact_match"):
            if folders[name].is_dir():
                # bare entries only: a line starting with "*" in those lists is a word, not our partial syntax
                entries[f"reference_{name}"] = [e.lstrip("*") for e in read_folder(folders[name]) if e.lstrip("*")]
        found = [name for name in ("custom", "exact_match") if folders[name].is_dir()]
        if found and not any(entries.get(f"reference_{name}") for name in found):
            raise ValueError(f"the reference blocklist folders {found} in {directory} hold no entries: a downloaded "
                             f"blocklist that yields nothing is an error, not an empty list")
        if folders["whitelist"].is_dir():
            whitelist += read_folder(folders["whitelist"])
        return cls(entries, whitelist=whitelist, cooccurrence=cooccurrence, **kwargs)

    @classmethod
    def default(cls, **kwargs) -> "KeywordBlocklist":
        """The lists that ship with cosmos_hf (violence, sexual, minors, hate, self-harm, weapons, drugs, ...)."""
        return cls.from_directory(DEFAULT_WORDLIST_DIR, **kwargs)

    # ----------------------------------------------------------------------------------------------- streams
    def _make_token(self, surface: str, obfuscated: bool) -> _Token:
        variants = set()
        # "|", "+" and "!" are leet letters ("k!ll") but also separators between letters ("b|o|m|b", "b+o+m+b")
        unseparated = re.sub(r"(?<=[a-z])[|+!](?=[a-z])", "", surface)
        for v in {v for form in {surface, unseparated} for v in deleet_variants(form)}:
            variants.add(v)
            # one letter doubled ("kiill", "bommb", "kiilled"): the word with that letter once is a listed one
            for i in range(1, len(v)):
                if v[i] == v[i - 1] and v[i].isalpha():
                    undoubled = v[:i] + v[i + 1 :]
                    if lemma_candidates(undoubled) & self._single_word_set:
                        obfuscated = True
                        variants.add(undoubled)
            if has_stretched_letters(v):
                obfuscated = True
                variants.add(squeeze_repeats(v, keep=2))
                squeezed = squeeze_repeats(v, keep=1)
                variants.add(squeezed)
                if squeezed in self._squeezed:  # "kiiilll" -> "kil" <- "kill"
                    variants.add(self._squeezed[squeezed][0])
        if any(ch in LEET_MAP for ch in surface) and not surface.isdigit():
            obfuscated = True
        candidates = set()
        for v in variants:
            candidates |= lemma_candidates(v)
        return _Token(surface, variants, candidates, obfuscated)

    def _token_streams(self, text: str) -> list[list[_Token]]:
        """Readings of the prompt: words split at inner punctuation, words joined across it, and runs of
        single letters joined ("k i l l", with and without a leading "a"/"i"). Each is matched on its own."""
        parts_stream, joined_stream, part_strings = [], [], []
        for chunk in text.split():
            # Non-ASCII inside a word (Cyrillic look-alikes, zero-width joiners, accents) marks it as disguised.
            non_ascii = any(ord(ch) > 127 for ch in chunk)
            for raw in raw_tokens(normalize_unicode(chunk)):
                joined, parts = split_raw_token(raw)
                glued = len(parts) > 1
                for part in parts:
                    parts_stream.append(self._make_token(part, obfuscated=non_ascii))
                    part_strings.append(part)
                joined_token = self._make_token(joined, obfuscated=glued or non_ascii)
                if re.fullmatch(r"[a-z]+(\*+[a-z]+)+\**|[a-z]+\*+", raw.strip(".,;:")):
                    # each run of stars hides one or two letters
                    star_form = re.sub(r"\*+", "*", raw.strip(".,;:"))
                    pattern = "".join("[a-z]{1,2}" if ch == "*" else re.escape(ch) for ch in star_form)
                    joined_token.wildcard, joined_token.star_form = re.compile(pattern), star_form
                joined_stream.append(joined_token)
        streams = [parts_stream, joined_stream]
        spaced_readings = []
        for leading, trailing in ((False, False), (True, False), (False, True), (True, True)):
            spaced = join_spaced_letters(part_strings, split_leading_word=leading, split_trailing_word=trailing)
            if spaced != part_strings and spaced not in spaced_readings:
                spaced_readings.append(spaced)
                streams.append([self._make_token(s, obfuscated=True) for s in spaced])
        return [[tok for tok in stream if tok.surface not in PHRASE_FILLER_WORDS] for stream in streams]

    @staticmethod
    def _phrase_at(stream: list[_Token], start: int, words: tuple[str, ...]) -> int:
        """Length of the span matching `words` at `start` (0 if none). A "~" word skips 0-3 tokens."""
        if not words:
            return 0
        if words[0] == GAP:
            for skip in range(MAX_GAP + 1):
                length = KeywordBlocklist._phrase_at(stream, start + skip, words[1:])
                if length:
                    return skip + length
            return 0
        if start >= len(stream) or words[0] not in stream[start].candidates:
            return 0
        if len(words) == 1:
            return 1
        rest = KeywordBlocklist._phrase_at(stream, start + 1, words[1:])
        return 1 + rest if rest else 0

    def _mark_whitelist(self, stream: list[_Token]):
        for i, tok in enumerate(stream):
            for cand in tok.candidates:
                for words in self._whitelist.get(cand, ()):
                    for k in range(self._phrase_at(stream, i, words)):
                        stream[i + k].exempt = True

    # ----------------------------------------------------------------------------------------------- matching
    def _match_stream(self, stream: list[_Token]):
        self._mark_whitelist(stream)
        # Co-occurrence rules first: they name the graver category (minors) when a plain word also matches.
        for category, side_a, side_b, exceptions in self._cooccurrence:
            live = [tok for tok in stream if not tok.exempt]
            hit_a = next((t for t in live if t.candidates & side_a), None)
            hit_b = next((t for t in live if t.candidates & side_b), None)
            excepted = exceptions and any(t.candidates & exceptions for t in live)
            if hit_a is not None and hit_b is not None and not excepted:
                entry = f"{sorted(hit_a.candidates & side_a)[0]} & {sorted(hit_b.candidates & side_b)[0]}"
                return category, entry, f"{hit_a.surface} ... {hit_b.surface}", "co-occurrence"
        for i, tok in enumerate(stream):
            if tok.exempt:
                continue
            for cand in tok.candidates:
                for words, category, entry in self._phrases.get(cand, ()):
                    span = self._phrase_at(stream, i, words)
                    if span and not any(stream[i + k].exempt for k in range(span)):
                        surface = " ".join(stream[i + k].surface for k in range(span))
                        kind = "whole word" if len(words) == 1 else "phrase"
                        return category, entry, surface, kind
            if tok.wildcard is not None:  # "f*ck", "sh*t": stars standing for one or two hidden letters
                for word, category in self._single_words:
                    if tok.wildcard.fullmatch(word):
                        return category, word, tok.surface, "wildcard"
                for fragment, category, entry in self._fragments:
                    # the fragment with one or two letters starred sits inside the word ("f*ck" in "f*ckface")
                    starred = {
                        fragment[:i] + "*" + fragment[i + n :] for n in (1, 2) for i in range(len(fragment) - n + 1)
                    }
                    if tok.wildcard.search(fragment) or any(s in tok.star_form for s in starred):
                        return category, entry, tok.surface, "wildcard"
            for fragment, category, entry in self._fragments:
                if any(fragment in v for v in tok.variants):
                    return category, entry, tok.surface, "partial"
            if self.enable_fuzzy:
                for v in tok.variants:
                    # An obfuscated token may have lost a letter (s*icide); a plain one must be as long as the word.
                    min_len = self.fuzzy_min_chars if tok.obfuscated else self.plain_fuzzy_min_chars
                    if len(v) < (min_len - 1 if tok.obfuscated else min_len):
                        continue
                    for word, category in self._fuzzy_words:
                        if len(word) < min_len:
                            continue
                        if not tok.obfuscated and (v[0] != word[0] or v[-1] != word[-1]):
                            continue
                        if _edit_distance_at_most_one(v, word):
                            return category, word, tok.surface, "fuzzy"
        return None

    # ----------------------------------------------------------------------------------------------- readings
    def _is_listed(self, word: str) -> bool:
        """A word of some entry or co-occurrence rule (in any inflection)."""
        return bool(lemma_candidates(word) & self._listed_words)

    def _foreign_words(self, text: str) -> tuple[list[str], list[str]]:
        """(all word tokens, those of 3+ letters that are neither English nor whitelisted)."""
        words = [w for raw in raw_tokens(normalize_unicode(text)) for w in split_raw_token(raw)[1]]
        foreign = [w for w in words if len(w) >= 3 and w.isalpha() and w not in self._vocabulary
                   and w not in self._whitelisted_words]
        return words, foreign

    def readings(self, prompt: str) -> list[tuple[str, str]]:
        """(name, text) readings of a prompt that are matched one by one; the first is the prompt itself."""
        text = replace_emoji(prompt)
        found = {"as written": text}
        found["escapes decoded"] = decode_escapes(text)
        found["line breaks joined"] = join_broken_words(found["escapes decoded"])
        for i, decoded in enumerate(base64_decodings(text)):
            found[f"base64 run {i + 1}"] = replace_emoji(decode_escapes(decoded))
        if self._vocabulary:
            for name, base in list(found.items()):
                words, foreign = self._foreign_words(base)
                long_words = [w for w in words if len(w) >= 3 and w.isalpha()]
                if long_words and len(foreign) >= len(long_words) / 2:  # mostly not English: a coded prompt?
                    found[f"{name}, rot13"] = rot13(base)
                    found[f"{name}, reversed"] = base[::-1]
                if foreign:  # single disguised words: reversed, rot13, or several words run together
                    rewritten, changed, foreign = [], False, set(foreign)
                    for word in words:
                        if word in foreign:
                            # a word is rewritten only into listed words, so that benign jargon keeps its spelling
                            # (and its whitelist entries: "bomb calorimeter")
                            original, backwards, shifted = word, word[::-1], rot13(word)
                            if self._is_listed(backwards):
                                word = backwards
                            elif self._is_listed(shifted):
                                word = shifted
                            else:
                                # run-together words; short two-word compounds ("rapeseed", "gunboat") are left alone
                                parts = segment_words(word, self._vocabulary, self._listed_words) or [word]
                                if any(map(self._is_listed, parts)) and (len(parts) >= 3
                                                                         or len(word) >= MIN_JOINED_LENGTH):
                                    word = " ".join(parts)
                            changed = changed or word != original
                        rewritten.append(word)
                    if changed:
                        found[f"{name}, words decoded"] = " ".join(rewritten)
        readings, seen = [], set()
        for name, reading in found.items():
            if reading not in seen:
                seen.add(reading)
                readings.append((name, reading))
        return readings

    def _match_scripts(self, text: str):
        normalised = normalize_unicode(text)
        for substring, category, entry in self._script_entries:
            if substring in normalised:
                return category, entry, substring, "substring"
        return None

    def check(self, prompt: str) -> GuardrailVerdict:
        """Verdict for one prompt. Empty or non-string prompts are blocked (nothing to vouch for)."""
        if not isinstance(prompt, str):
            return GuardrailVerdict(False, "blocklist", f"prompt must be a string, got {type(prompt).__name__}")
        if not prompt.strip():
            return GuardrailVerdict(False, "blocklist", "prompt is empty")
        for reading_name, reading in self.readings(prompt):
            matches = [self._match_scripts(reading)] if self._script_entries else []
            matches += (self._match_stream(stream) for stream in self._token_streams(reading))
            match = next((m for m in matches if m is not None), None)
            if match is not None:
                category, entry, surface, kind = match
                where = "" if reading_name == "as written" else f" (reading: {reading_name})"
                return GuardrailVerdict(
                    False,
                    "blocklist",
                    f"matched {entry!r} (category: {category}, {kind}) in token {surface!r}{where}",
                    details={"category": category, "entry": entry, "match": surface, "kind": kind,
                             "reading": reading_name},
                )
        return GuardrailVerdict(True, "blocklist", "no blocklisted term")

    def __call__(self, prompt: str) -> GuardrailVerdict:
        return self.check(prompt)


__all__ = ["KeywordBlocklist", "read_wordlist", "DEFAULT_WORDLIST_DIR", "PHRASE_FILLER_WORDS"]
